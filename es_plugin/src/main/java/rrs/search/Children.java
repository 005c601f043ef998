package rrs.search;

import org.elasticsearch.search.retriever.CompoundRetrieverBuilder.RetrieverSource;
import org.elasticsearch.search.retriever.RetrieverBuilder;
import org.elasticsearch.search.retriever.RetrieverParserContext;
import org.elasticsearch.xcontent.ParseField;
import org.elasticsearch.xcontent.ToXContent;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentParser;

import rrs.embed.EmbedQueryVectorBuilder;
import rrs.embed.EmbedStep;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/**
 * Parsing and printing the child retrievers of our compound retrievers, shared by all three; each
 * child comes with the {@code rrs_embed} query vector builders parsed in it ({@link EmbedStep}).
 */
final class Children {

    private Children() {}

    /** One {@code {"<retriever name>": {...}}} object of a {@code retrievers} array, and its rrs_embed builders. */
    static EmbedStep.Parsed<RetrieverBuilder> parse(XContentParser parser, RetrieverParserContext context) throws IOException {
        return EmbedStep.collect(() -> parseOne(parser, context));
    }

    /** A retriever's single child ({@code rrs_rerank}'s {@code retriever}), and its rrs_embed builders. */
    static EmbedStep.Parsed<RetrieverBuilder> parseNamed(XContentParser parser, RetrieverParserContext context, String name)
        throws IOException {
        return EmbedStep.collect(() -> {
            RetrieverBuilder child = parser.namedObject(RetrieverBuilder.class, name, context);
            context.trackRetrieverUsage(child);
            return child;
        });
    }

    private static RetrieverBuilder parseOne(XContentParser parser, RetrieverParserContext context) throws IOException {
        if (parser.nextToken() != XContentParser.Token.FIELD_NAME) {
            throw new IllegalArgumentException("each entry of [retrievers] must be an object naming one retriever, "
                + "e.g. {\"standard\": {\"query\": ...}}");
        }
        RetrieverBuilder child = parser.namedObject(RetrieverBuilder.class, parser.currentName(), context);
        context.trackRetrieverUsage(child);
        if (parser.nextToken() != XContentParser.Token.END_OBJECT) {
            throw new IllegalArgumentException("each entry of [retrievers] must name exactly one retriever");
        }
        return child;
    }

    /** The children as sources; at least one, else a 400 that says so. */
    static List<RetrieverSource> sources(List<EmbedStep.Parsed<RetrieverBuilder>> children, String owner) {
        if (children == null || children.isEmpty()) {
            throw new IllegalArgumentException("[" + owner + "] needs at least one retriever in [retrievers]");
        }
        List<RetrieverSource> sources = new ArrayList<>();
        for (EmbedStep.Parsed<RetrieverBuilder> child : children) {
            sources.add(RetrieverSource.from(child.value()));
        }
        return sources;
    }

    /** Each child's rrs_embed builders, in child order. */
    static List<List<EmbedQueryVectorBuilder>> embeds(List<EmbedStep.Parsed<RetrieverBuilder>> children) {
        List<List<EmbedQueryVectorBuilder>> embeds = new ArrayList<>();
        for (EmbedStep.Parsed<RetrieverBuilder> child : children == null ? List.<EmbedStep.Parsed<RetrieverBuilder>>of() : children) {
            embeds.add(child.embeds());
        }
        return List.copyOf(embeds);
    }

    /** {@code items} without the positions in {@code dropped} (children whose rrs_embed fell back). */
    static <T> List<T> without(List<T> items, List<Integer> dropped) {
        List<T> kept = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            if (dropped.contains(i) == false) {
                kept.add(items.get(i));
            }
        }
        return kept;
    }

    static double[] without(double[] items, List<Integer> dropped) {
        return without(java.util.Arrays.stream(items).boxed().toList(), dropped).stream().mapToDouble(Double::doubleValue).toArray();
    }

    static void toXContent(XContentBuilder builder, ToXContent.Params params, List<RetrieverSource> children, ParseField field)
        throws IOException {
        builder.startArray(field.getPreferredName());
        for (RetrieverSource child : children) {
            child.retriever().toXContent(builder, params);
        }
        builder.endArray();
    }
}
