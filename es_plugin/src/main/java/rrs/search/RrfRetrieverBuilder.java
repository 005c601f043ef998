package rrs.search;

import org.apache.lucene.search.ScoreDoc;
import org.elasticsearch.index.query.QueryBuilder;
import org.elasticsearch.index.query.QueryRewriteContext;
import org.elasticsearch.search.rank.RankBuilder;
import org.elasticsearch.search.rank.RankDoc;
import org.elasticsearch.search.retriever.CompoundRetrieverBuilder;
import org.elasticsearch.search.retriever.RetrieverBuilder;
import org.elasticsearch.search.retriever.RetrieverParserContext;
import org.elasticsearch.xcontent.ConstructingObjectParser;
import org.elasticsearch.xcontent.ParseField;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentParser;

import rrs.embed.EmbedQueryVectorBuilder;
import rrs.embed.EmbedStep;

import java.io.IOException;
import java.util.List;
import java.util.Objects;

import static org.elasticsearch.xcontent.ConstructingObjectParser.constructorArg;
import static org.elasticsearch.xcontent.ConstructingObjectParser.optionalConstructorArg;

/**
 * {@code rrs_rrf}: reciprocal rank fusion of child retrievers on the coordinating node, with the
 * service's math and tie order ({@link Fusion#rrf}). Free: no licence check.
 *
 * <pre>{"rrs_rrf": {"retrievers": [{"standard": {...}}, {"knn": {...}}], "rank_constant": 60, "rank_window_size": 100}}</pre>
 */
public final class RrfRetrieverBuilder extends CompoundRetrieverBuilder<RrfRetrieverBuilder> {

    public static final String NAME = "rrs_rrf";
    static final ParseField RETRIEVERS = new ParseField("retrievers");
    static final ParseField RANK_CONSTANT = new ParseField("rank_constant");
    static final int DEFAULT_RANK_CONSTANT = 60;

    @SuppressWarnings("unchecked")
    static final ConstructingObjectParser<RrfRetrieverBuilder, RetrieverParserContext> PARSER = new ConstructingObjectParser<>(
        NAME,
        false,
        args -> new RrfRetrieverBuilder(
            Children.sources((List<EmbedStep.Parsed<RetrieverBuilder>>) args[0], NAME),
            Checks.positive(args[1], RankBuilder.DEFAULT_RANK_WINDOW_SIZE, NAME, "rank_window_size"),
            Checks.positive(args[2], DEFAULT_RANK_CONSTANT, NAME, "rank_constant"),
            Children.embeds((List<EmbedStep.Parsed<RetrieverBuilder>>) args[0])
        )
    );

    static {
        PARSER.declareObjectArray(constructorArg(), Children::parse, RETRIEVERS);
        PARSER.declareInt(optionalConstructorArg(), RANK_WINDOW_SIZE_FIELD);
        PARSER.declareInt(optionalConstructorArg(), RANK_CONSTANT);
        RetrieverBuilder.declareBaseParserFields(PARSER);
    }

    public static RrfRetrieverBuilder fromXContent(XContentParser parser, RetrieverParserContext context) throws IOException {
        return PARSER.apply(parser, context);
    }

    private final int rankConstant;
    private final List<List<EmbedQueryVectorBuilder>> embeds; // each child's rrs_embed builders (EmbedStep)

    RrfRetrieverBuilder(List<RetrieverSource> children, int rankWindowSize, int rankConstant, List<List<EmbedQueryVectorBuilder>> embeds) {
        super(children, rankWindowSize);
        this.rankConstant = rankConstant;
        this.embeds = embeds;
    }

    @Override
    public String getName() {
        return NAME;
    }

    @Override
    protected RrfRetrieverBuilder clone(List<RetrieverSource> children, List<QueryBuilder> preFilters) {
        return copy(children, preFilters, embeds);
    }

    private RrfRetrieverBuilder copy(List<RetrieverSource> children, List<QueryBuilder> preFilters,
                                     List<List<EmbedQueryVectorBuilder>> childEmbeds) {
        RrfRetrieverBuilder copy = new RrfRetrieverBuilder(children, rankWindowSize, rankConstant, childEmbeds);
        copy.preFilterQueryBuilders = preFilters;
        copy.retrieverName = retrieverName;
        copy.minScore = minScore;
        return copy;
    }

    /** The children's rrs_embed texts are embedded first; a child whose embedding fell back is left out. */
    @Override
    protected RetrieverBuilder doRewrite(QueryRewriteContext ctx) {
        EmbedStep.Outcome outcome = EmbedStep.before(embeds, ctx, NAME);
        if (outcome.nothing()) {
            return this;
        }
        List<Integer> dropped = outcome.dropped();
        return copy(Children.without(innerRetrievers, dropped), preFilterQueryBuilders, Children.without(embeds, dropped));
    }

    @Override
    protected RankDoc[] combineInnerRetrieverResults(List<ScoreDoc[]> rankResults, boolean explain) {
        return Fusion.atLeast(Fusion.rrf(rankResults, rankConstant, rankWindowSize), minScore);
    }

    @Override
    protected void doToXContent(XContentBuilder builder, Params params) throws IOException {
        Children.toXContent(builder, params, innerRetrievers, RETRIEVERS);
        builder.field(RANK_WINDOW_SIZE_FIELD.getPreferredName(), rankWindowSize);
        builder.field(RANK_CONSTANT.getPreferredName(), rankConstant);
    }

    @Override
    public boolean doEquals(Object o) {
        return super.doEquals(o) && rankConstant == ((RrfRetrieverBuilder) o).rankConstant;
    }

    @Override
    public int doHashCode() {
        return Objects.hash(super.doHashCode(), rankConstant);
    }
}
