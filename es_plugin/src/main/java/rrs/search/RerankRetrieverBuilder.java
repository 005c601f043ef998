package rrs.search;

import org.apache.lucene.search.ScoreDoc;
import org.elasticsearch.index.query.QueryBuilder;
import org.elasticsearch.index.query.QueryRewriteContext;
import org.elasticsearch.search.builder.SearchSourceBuilder;
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
import java.util.function.Supplier;

import static org.elasticsearch.xcontent.ConstructingObjectParser.constructorArg;
import static org.elasticsearch.xcontent.ConstructingObjectParser.optionalConstructorArg;

/**
 * {@code rrs_rerank}: the child's top {@code rank_window_size} reranked once, on the coordinating
 * node, by the node's reranker pool, and blended as the service blends.
 *
 * <pre>{"rrs_rerank": {"retriever": {"rrs_rrf": {...}}, "field": ["title", "text"], "inference_text": "...",
 *   "rank_window_size": 100, "weight": 1.0, "normalization": "minmax", "strict": false}}</pre>
 */
public final class RerankRetrieverBuilder extends CompoundRetrieverBuilder<RerankRetrieverBuilder> {

    public static final String NAME = "rrs_rerank";
    static final ParseField RETRIEVER = new ParseField("retriever");
    static final ParseField FIELD = new ParseField("field");
    static final ParseField INFERENCE_TEXT = new ParseField("inference_text");
    static final ParseField WEIGHT = new ParseField("weight");
    static final ParseField NORMALIZATION = new ParseField("normalization");
    static final ParseField STRICT = new ParseField("strict");

    /** Arguments in parse order; the pool is not a request parameter, it comes from the node. */
    @SuppressWarnings("unchecked")
    static ConstructingObjectParser<RerankRetrieverBuilder, RetrieverParserContext> parser(Supplier<RerankPool> pool) {
        ConstructingObjectParser<RerankRetrieverBuilder, RetrieverParserContext> parser = new ConstructingObjectParser<>(
            NAME,
            false,
            args -> new RerankRetrieverBuilder(
                List.of(RetrieverSource.from(((EmbedStep.Parsed<RetrieverBuilder>) args[0]).value())),
                Checks.positive(args[3], RankBuilder.DEFAULT_RANK_WINDOW_SIZE, NAME, "rank_window_size"),
                fields((List<String>) args[1]),
                text((String) args[2]),
                weight((Double) args[4]),
                Checks.oneOf(args[5], "minmax", NAME, "normalization", "minmax", "rank"),
                args[6] != null && (Boolean) args[6],
                pool.get(),
                List.of(((EmbedStep.Parsed<RetrieverBuilder>) args[0]).embeds())
            )
        );
        parser.declareNamedObject(constructorArg(), (p, c, n) -> Children.parseNamed(p, c, n), RETRIEVER);
        parser.declareStringArray(constructorArg(), FIELD);
        parser.declareString(constructorArg(), INFERENCE_TEXT);
        parser.declareInt(optionalConstructorArg(), RANK_WINDOW_SIZE_FIELD);
        parser.declareDouble(optionalConstructorArg(), WEIGHT);
        parser.declareString(optionalConstructorArg(), NORMALIZATION);
        parser.declareBoolean(optionalConstructorArg(), STRICT);
        RetrieverBuilder.declareBaseParserFields(parser);
        return parser;
    }

    public static RerankRetrieverBuilder fromXContent(XContentParser parser, RetrieverParserContext context, Supplier<RerankPool> pool)
        throws IOException {
        return parser(pool).apply(parser, context);
    }

    static List<String> fields(List<String> fields) {
        if (fields.isEmpty() || fields.stream().anyMatch(f -> f == null || f.isBlank())) {
            throw new IllegalArgumentException("[" + NAME + "] [field] must name the text field(s) the reranker reads, e.g. \"text\"");
        }
        return fields;
    }

    static String text(String text) {
        if (text.isBlank()) {
            throw new IllegalArgumentException("[" + NAME + "] [inference_text] must not be blank: it is the query the reranker reads");
        }
        return text;
    }

    static double weight(Double weight) {
        double w = weight == null ? 1.0 : weight;
        if ((w >= 0.0 && w <= 1.0) == false) {
            throw new IllegalArgumentException("[" + NAME + "] [weight] must be in [0, 1] (the reranker's share), got " + w);
        }
        return w;
    }

    private final List<String> fields;
    private final String inferenceText;
    private final double weight;
    private final String normalization;
    private final boolean strict;
    private final RerankPool pool;
    private final List<List<EmbedQueryVectorBuilder>> embeds; // the child's rrs_embed builders (EmbedStep)

    RerankRetrieverBuilder(List<RetrieverSource> child, int window, List<String> fields, String inferenceText, double weight,
                           String normalization, boolean strict, RerankPool pool, List<List<EmbedQueryVectorBuilder>> embeds) {
        super(child, window);
        this.embeds = embeds;
        this.fields = List.copyOf(fields);
        this.inferenceText = inferenceText;
        this.weight = weight;
        this.normalization = normalization;
        this.strict = strict;
        this.pool = pool;
    }

    @Override
    public String getName() {
        return NAME;
    }

    @Override
    protected RerankRetrieverBuilder clone(List<RetrieverSource> children, List<QueryBuilder> preFilters) {
        RerankRetrieverBuilder copy = new RerankRetrieverBuilder(children, rankWindowSize, fields, inferenceText, weight,
            normalization, strict, pool, embeds);
        copy.preFilterQueryBuilders = preFilters;
        copy.retrieverName = retrieverName;
        copy.minScore = minScore;
        return copy;
    }

    /** A child's rrs_embed texts are embedded first (a kNN child directly under rrs_rerank has nothing to fall back on). */
    @Override
    protected RetrieverBuilder doRewrite(QueryRewriteContext ctx) {
        EmbedStep.Outcome outcome = EmbedStep.before(embeds, ctx, NAME);
        return outcome.nothing() ? this : clone(innerRetrievers, preFilterQueryBuilders);
    }

    @Override
    protected SearchSourceBuilder finalizeSourceBuilder(SearchSourceBuilder source) {
        // the child's search sorts by [_score, _shard_doc]; without track_scores its hits carry no
        // score, and the blend (and a skipped rerank's answer) needs the first-stage scores
        source.trackScores(true);
        source.rankBuilder(new RerankRankBuilder(rankWindowSize, fields, inferenceText, weight, normalization, strict, pool));
        return source;
    }

    @Override
    protected RankDoc[] combineInnerRetrieverResults(List<ScoreDoc[]> rankResults, boolean explain) {
        ScoreDoc[] ranked = rankResults.get(0); // already in reranked order, with strictly decreasing scores
        RankDoc[] docs = new RankDoc[ranked.length];
        for (int i = 0; i < ranked.length; i++) {
            docs[i] = new RankDoc(ranked[i].doc, ranked[i].score, ranked[i].shardIndex);
            docs[i].rank = i + 1;
        }
        return Fusion.atLeast(docs, minScore); // after the rerank: a first-stage cut could drop what it lifts
    }

    @Override
    protected void doToXContent(XContentBuilder builder, Params params) throws IOException {
        builder.field(RETRIEVER.getPreferredName(), innerRetrievers.get(0).retriever());
        builder.field(FIELD.getPreferredName(), fields);
        builder.field(INFERENCE_TEXT.getPreferredName(), inferenceText);
        builder.field(RANK_WINDOW_SIZE_FIELD.getPreferredName(), rankWindowSize);
        builder.field(WEIGHT.getPreferredName(), weight);
        builder.field(NORMALIZATION.getPreferredName(), normalization);
        builder.field(STRICT.getPreferredName(), strict);
    }

    @Override
    public boolean doEquals(Object o) {
        RerankRetrieverBuilder that = (RerankRetrieverBuilder) o;
        return super.doEquals(o) && fields.equals(that.fields) && inferenceText.equals(that.inferenceText)
            && weight == that.weight && normalization.equals(that.normalization) && strict == that.strict;
    }

    @Override
    public int doHashCode() {
        return Objects.hash(super.doHashCode(), fields, inferenceText, weight, normalization, strict);
    }
}
