package rrs.search;

import org.apache.lucene.search.Explanation;
import org.apache.lucene.search.Query;
import org.elasticsearch.TransportVersion;
import org.elasticsearch.client.internal.Client;
import org.elasticsearch.common.io.stream.StreamInput;
import org.elasticsearch.common.io.stream.StreamOutput;
import org.elasticsearch.search.rank.RankBuilder;
import org.elasticsearch.search.rank.RankDoc;
import org.elasticsearch.search.rank.context.QueryPhaseRankCoordinatorContext;
import org.elasticsearch.search.rank.context.QueryPhaseRankShardContext;
import org.elasticsearch.search.rank.context.RankFeaturePhaseRankCoordinatorContext;
import org.elasticsearch.search.rank.context.RankFeaturePhaseRankShardContext;
import org.elasticsearch.xcontent.XContentBuilder;

import java.io.IOException;
import java.util.List;
import java.util.Objects;

/**
 * The rank builder {@code rrs_rerank} puts on its child's search: it asks the shards for the
 * window's texts in the rank feature phase and reranks them on the coordinator. Sent to the
 * shards (a named writeable); the pool stays on the coordinating node and is never serialised.
 */
final class RerankRankBuilder extends RankBuilder {

    static final String NAME = "rrs_rerank";

    private final List<String> fields;
    private final String inferenceText;
    private final double weight;
    private final String normalization;
    private final boolean strict;
    private final transient RerankPool pool; // null on a shard's copy: only the coordinator calls the pool

    RerankRankBuilder(int window, List<String> fields, String inferenceText, double weight, String normalization, boolean strict,
                      RerankPool pool) {
        super(window);
        this.fields = List.copyOf(fields);
        this.inferenceText = inferenceText;
        this.weight = weight;
        this.normalization = normalization;
        this.strict = strict;
        this.pool = pool;
    }

    RerankRankBuilder(StreamInput in) throws IOException {
        super(in);
        this.fields = in.readStringCollectionAsImmutableList();
        this.inferenceText = in.readString();
        this.weight = in.readDouble();
        this.normalization = in.readString();
        this.strict = in.readBoolean();
        this.pool = null;
    }

    @Override
    protected void doWriteTo(StreamOutput out) throws IOException {
        out.writeStringCollection(fields);
        out.writeString(inferenceText);
        out.writeDouble(weight);
        out.writeString(normalization);
        out.writeBoolean(strict);
    }

    @Override
    public String getWriteableName() {
        return NAME;
    }

    @Override
    public TransportVersion getMinimalSupportedVersion() {
        return TransportVersion.minimumCompatible();
    }

    @Override
    protected void doXContent(XContentBuilder builder, Params params) throws IOException {
        builder.field("field", fields);
        builder.field("inference_text", inferenceText);
        builder.field("weight", weight);
        builder.field("normalization", normalization);
        builder.field("strict", strict);
    }

    @Override
    public boolean isCompoundBuilder() {
        return false;
    }

    @Override
    public Explanation explainHit(Explanation baseExplanation, RankDoc scoreDoc, List<String> queryNames) {
        if (scoreDoc == null || baseExplanation.isMatch() == false) {
            return baseExplanation;
        }
        return Explanation.match(scoreDoc.score, "rrs_rerank: rank [" + scoreDoc.rank + "] after the reranker pool's blend",
            baseExplanation);
    }

    @Override
    public QueryPhaseRankShardContext buildQueryPhaseShardContext(List<Query> queries, int from) {
        return null; // the query phase is the child's own
    }

    @Override
    public QueryPhaseRankCoordinatorContext buildQueryPhaseCoordinatorContext(int size, int from) {
        return null;
    }

    @Override
    public RankFeaturePhaseRankShardContext buildRankFeaturePhaseShardContext() {
        return new RerankShardContext(fields);
    }

    @Override
    public RankFeaturePhaseRankCoordinatorContext buildRankFeaturePhaseCoordinatorContext(int size, int from, Client client) {
        if (pool == null) {
            throw new IllegalStateException("rrs_rerank reached a coordinator without the reranker pool");
        }
        return new RerankCoordinatorContext(size, from, rankWindowSize(), strict, pool, inferenceText, weight, normalization);
    }

    @Override
    protected boolean doEquals(RankBuilder other) {
        RerankRankBuilder that = (RerankRankBuilder) other;
        return fields.equals(that.fields) && inferenceText.equals(that.inferenceText) && weight == that.weight
            && normalization.equals(that.normalization) && strict == that.strict;
    }

    @Override
    protected int doHashCode() {
        return Objects.hash(fields, inferenceText, weight, normalization, strict);
    }
}
