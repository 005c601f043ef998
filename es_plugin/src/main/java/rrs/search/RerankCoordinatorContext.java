package rrs.search;

import org.elasticsearch.ElasticsearchStatusException;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.support.ContextPreservingActionListener;
import org.elasticsearch.common.logging.HeaderWarning;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.search.rank.context.RankFeaturePhaseRankCoordinatorContext;
import org.elasticsearch.search.rank.feature.RankFeatureDoc;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * On the coordinating node, once per search: the merged window's texts go to the pool in one
 * asynchronous call, and the answer is blended with the first-stage scores as the service
 * blends ({@link Fusion#blend}); ties keep the first-stage order.
 *
 * <p>When the pool fails, the search goes on in the first-stage order and the response carries
 * a {@code Warning} header {@code rrs_rerank skipped: <reason>}; with {@code "strict": true} the
 * search fails instead with a 503 that gives the reason.
 */
final class RerankCoordinatorContext extends RankFeaturePhaseRankCoordinatorContext {

    static final String SKIPPED = "rrs_rerank skipped: ";

    private final RerankPool pool;
    private final String query;
    private final double weight;
    private final String normalization;

    RerankCoordinatorContext(int size, int from, int window, boolean strict, RerankPool pool, String query, double weight,
                             String normalization) {
        super(size, from, window, strict == false);
        this.pool = pool;
        this.query = query;
        this.weight = weight;
        this.normalization = normalization;
    }

    @Override
    protected void computeScores(RankFeatureDoc[] featureDocs, ActionListener<float[]> scoreListener) {
        throw new UnsupportedOperationException("rrs_rerank computes and orders its scores in computeRankScoresForGlobalResults");
    }

    @Override
    public void computeRankScoresForGlobalResults(RankFeatureDoc[] featureDocs, ActionListener<RankFeatureDoc[]> listener) {
        RankFeatureDoc[] docs = featureDocs.clone();
        // the first-stage order, as the query phase merged it: score, then shard, then doc
        Arrays.sort(docs, Comparator.comparingDouble((RankFeatureDoc d) -> -d.score)
            .thenComparingInt(d -> d.shardIndex).thenComparingInt(d -> d.doc));
        if (weight == 0.0 || docs.length == 0) { // no say for the cross-encoder: it is not asked (as the service)
            listener.onResponse(docs);
            return;
        }
        List<String> texts = new ArrayList<>(docs.length);
        double[] first = new double[docs.length];
        for (int i = 0; i < docs.length; i++) {
            texts.add(docs[i].featureData == null || docs[i].featureData.isEmpty() ? "" : docs[i].featureData.get(0));
            first[i] = docs[i].score;
        }
        ActionListener<RankFeatureDoc[]> answer = ContextPreservingActionListener.wrapPreservingContext(new ActionListener<>() {
            @Override
            public void onResponse(RankFeatureDoc[] ranked) {
                listener.onResponse(ranked);
            }

            @Override
            public void onFailure(Exception e) {
                if (failuresAllowed()) {
                    HeaderWarning.addWarning(SKIPPED + e.getMessage());
                    listener.onFailure(e); // the rank feature phase keeps the first-stage order
                } else {
                    listener.onFailure(new ElasticsearchStatusException(
                        "rrs_rerank failed and [strict] is true: " + e.getMessage(), RestStatus.SERVICE_UNAVAILABLE, e));
                }
            }
        }, pool.threadContext());
        pool.rerank(query, texts, ActionListener.wrap(scores -> answer.onResponse(order(docs, first, scores)), answer::onFailure));
    }

    /** The window by blended score (ties: first-stage order), with floats Elasticsearch keeps in that order. */
    private RankFeatureDoc[] order(RankFeatureDoc[] docs, double[] first, double[] rerank) {
        double[] blended = Fusion.blend(first, rerank, weight, normalization);
        Integer[] order = Fusion.byScore(blended);
        double[] sorted = new double[order.length];
        for (int i = 0; i < order.length; i++) {
            sorted[i] = blended[order[i]];
        }
        float[] scores = Fusion.ordered(sorted);
        RankFeatureDoc[] ranked = new RankFeatureDoc[order.length];
        for (int i = 0; i < order.length; i++) {
            ranked[i] = docs[order[i]];
            ranked[i].score = scores[i];
        }
        return ranked;
    }
}
