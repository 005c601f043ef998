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
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

import static org.elasticsearch.xcontent.ConstructingObjectParser.constructorArg;
import static org.elasticsearch.xcontent.ConstructingObjectParser.optionalConstructorArg;

/**
 * {@code rrs_linear}: a weighted sum of each child's normalised scores (min-max or z-score), the
 * service's linear fusion ({@link Fusion#linear}); the service's {@code weight} w is
 * {@code "weights": [1 - w, w]} over (BM25, kNN).
 *
 * <pre>{"rrs_linear": {"retrievers": [...], "weights": [0.5, 0.5], "normalizer": "minmax", "rank_window_size": 100}}</pre>
 */
public final class LinearRetrieverBuilder extends CompoundRetrieverBuilder<LinearRetrieverBuilder> {

    public static final String NAME = "rrs_linear";
    static final ParseField RETRIEVERS = new ParseField("retrievers");
    static final ParseField WEIGHTS = new ParseField("weights");
    static final ParseField NORMALIZER = new ParseField("normalizer");

    @SuppressWarnings("unchecked")
    static final ConstructingObjectParser<LinearRetrieverBuilder, RetrieverParserContext> PARSER = new ConstructingObjectParser<>(
        NAME,
        false,
        args -> {
            List<EmbedStep.Parsed<RetrieverBuilder>> parsed = (List<EmbedStep.Parsed<RetrieverBuilder>>) args[0];
            List<RetrieverSource> children = Children.sources(parsed, NAME);
            return new LinearRetrieverBuilder(
                children,
                Checks.positive(args[3], RankBuilder.DEFAULT_RANK_WINDOW_SIZE, NAME, "rank_window_size"),
                weights((List<Double>) args[1], children.size()),
                Checks.oneOf(args[2], "minmax", NAME, "normalizer", "minmax", "zscore"),
                Children.embeds(parsed)
            );
        }
    );

    static {
        PARSER.declareObjectArray(constructorArg(), Children::parse, RETRIEVERS);
        PARSER.declareDoubleArray(optionalConstructorArg(), WEIGHTS);
        PARSER.declareString(optionalConstructorArg(), NORMALIZER);
        PARSER.declareInt(optionalConstructorArg(), RANK_WINDOW_SIZE_FIELD);
        RetrieverBuilder.declareBaseParserFields(PARSER);
    }

    public static LinearRetrieverBuilder fromXContent(XContentParser parser, RetrieverParserContext context) throws IOException {
        return PARSER.apply(parser, context);
    }

    /** One finite, non-negative weight per child (all 1 when none are given). */
    static double[] weights(List<Double> given, int children) {
        if (given == null) {
            double[] ones = new double[children];
            Arrays.fill(ones, 1.0);
            return ones;
        }
        if (given.size() != children) {
            throw new IllegalArgumentException(
                "[" + NAME + "] has " + children + " retrievers but " + given.size() + " weights; give one weight per retriever"
            );
        }
        double[] out = new double[children];
        for (int i = 0; i < children; i++) {
            double w = given.get(i);
            if (Double.isFinite(w) == false || w < 0) {
                throw new IllegalArgumentException("[" + NAME + "] weights must be finite and >= 0, got " + w);
            }
            out[i] = w;
        }
        return out;
    }

    private final double[] weights;
    private final String normalizer;
    private final List<List<EmbedQueryVectorBuilder>> embeds; // each child's rrs_embed builders (EmbedStep)

    LinearRetrieverBuilder(List<RetrieverSource> children, int rankWindowSize, double[] weights, String normalizer,
                           List<List<EmbedQueryVectorBuilder>> embeds) {
        super(children, rankWindowSize);
        this.weights = weights;
        this.normalizer = normalizer;
        this.embeds = embeds;
    }

    @Override
    public String getName() {
        return NAME;
    }

    @Override
    protected LinearRetrieverBuilder clone(List<RetrieverSource> children, List<QueryBuilder> preFilters) {
        return copy(children, preFilters, weights, embeds);
    }

    private LinearRetrieverBuilder copy(List<RetrieverSource> children, List<QueryBuilder> preFilters, double[] childWeights,
                                        List<List<EmbedQueryVectorBuilder>> childEmbeds) {
        LinearRetrieverBuilder copy = new LinearRetrieverBuilder(children, rankWindowSize, childWeights, normalizer, childEmbeds);
        copy.preFilterQueryBuilders = preFilters;
        copy.retrieverName = retrieverName;
        copy.minScore = minScore;
        return copy;
    }

    /** The children's rrs_embed texts are embedded first; a child whose embedding fell back is left out, with its weight. */
    @Override
    protected RetrieverBuilder doRewrite(QueryRewriteContext ctx) {
        EmbedStep.Outcome outcome = EmbedStep.before(embeds, ctx, NAME);
        if (outcome.nothing()) {
            return this;
        }
        List<Integer> dropped = outcome.dropped();
        return copy(Children.without(innerRetrievers, dropped), preFilterQueryBuilders, Children.without(weights, dropped),
            Children.without(embeds, dropped));
    }

    @Override
    protected RankDoc[] combineInnerRetrieverResults(List<ScoreDoc[]> rankResults, boolean explain) {
        return Fusion.atLeast(Fusion.linear(rankResults, weights, normalizer, rankWindowSize), minScore);
    }

    @Override
    protected void doToXContent(XContentBuilder builder, Params params) throws IOException {
        Children.toXContent(builder, params, innerRetrievers, RETRIEVERS);
        builder.array(WEIGHTS.getPreferredName(), weights);
        builder.field(NORMALIZER.getPreferredName(), normalizer);
        builder.field(RANK_WINDOW_SIZE_FIELD.getPreferredName(), rankWindowSize);
    }

    @Override
    public boolean doEquals(Object o) {
        LinearRetrieverBuilder that = (LinearRetrieverBuilder) o;
        return super.doEquals(o) && Arrays.equals(weights, that.weights) && normalizer.equals(that.normalizer);
    }

    @Override
    public int doHashCode() {
        return Objects.hash(super.doHashCode(), Arrays.hashCode(weights), normalizer);
    }
}
