package rrs.search;

import org.elasticsearch.search.retriever.CompoundRetrieverBuilder.RetrieverSource;
import org.elasticsearch.search.retriever.RetrieverBuilder;
import org.elasticsearch.search.retriever.RetrieverParserContext;
import org.elasticsearch.xcontent.ParseField;
import org.elasticsearch.xcontent.ToXContent;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentParser;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;

/** Parsing and printing the child retrievers of our compound retrievers, shared by all three. */
final class Children {

    private Children() {}

    /** One {@code {"<retriever name>": {...}}} object of a {@code retrievers} array. */
    static RetrieverBuilder parse(XContentParser parser, RetrieverParserContext context) throws IOException {
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
    static List<RetrieverSource> sources(List<RetrieverBuilder> children, String owner) {
        if (children == null || children.isEmpty()) {
            throw new IllegalArgumentException("[" + owner + "] needs at least one retriever in [retrievers]");
        }
        List<RetrieverSource> sources = new ArrayList<>();
        for (RetrieverBuilder child : children) {
            sources.add(RetrieverSource.from(child));
        }
        return sources;
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
