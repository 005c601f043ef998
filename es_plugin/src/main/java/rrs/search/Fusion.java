package rrs.search;

import org.apache.lucene.search.ScoreDoc;
import org.elasticsearch.search.rank.RankDoc;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The service's fusion and blend math (service/fusion.py, service/blend.py), in Java, as pure
 * functions over ranked lists. Scores are computed in double, as Python does, and ties keep
 * the order of first appearance (the first child's docs before the second's), so a fused list
 * here is the service's list, doc for doc.
 *
 * <p>Elasticsearch orders the final hits by their float score only (equal scores fall back to
 * shard and Lucene doc id), and clamps scores at or below zero. {@link #ordered} therefore
 * turns a ranked list of double scores into floats that strictly decrease: each is the
 * score's own float unless that would tie or pass the one before, then one float step
 * below it. The order survives; a score moves by a few units in the last place at most.
 */
public final class Fusion {

    private Fusion() {}

    /** A doc of one shard: the key a document has in every child's list. */
    record Key(int doc, int shard) {}

    /** Reciprocal rank fusion: sum over lists of 1 / (k + rank), ranks from 1; the top {@code window}. */
    public static RankDoc[] rrf(List<ScoreDoc[]> lists, int rankConstant, int window) {
        Map<Key, double[]> scores = new LinkedHashMap<>();
        for (ScoreDoc[] list : lists) {
            for (int i = 0; i < list.length; i++) {
                scores.computeIfAbsent(new Key(list[i].doc, list[i].shardIndex), k -> new double[1])[0] +=
                    1.0 / (rankConstant + i + 1);
            }
        }
        return top(scores, window, false);
    }

    /**
     * Weighted sum of each list's normalised scores; a doc missing from a list gets that
     * list's lowest normalised score (it ranked below everything the list returned).
     */
    public static RankDoc[] linear(List<ScoreDoc[]> lists, double[] weights, String normalizer, int window) {
        List<Map<Key, Double>> normalised = new ArrayList<>();
        double[] floors = new double[lists.size()];
        Map<Key, double[]> fused = new LinkedHashMap<>();
        for (int l = 0; l < lists.size(); l++) {
            ScoreDoc[] list = lists.get(l);
            double[] raw = new double[list.length];
            for (int i = 0; i < list.length; i++) {
                raw[i] = list[i].score;
            }
            double[] norm = normalize(raw, normalizer);
            Map<Key, Double> byDoc = new LinkedHashMap<>();
            double floor = Double.POSITIVE_INFINITY;
            for (int i = 0; i < list.length; i++) {
                Key key = new Key(list[i].doc, list[i].shardIndex);
                byDoc.putIfAbsent(key, norm[i]);
                fused.computeIfAbsent(key, k -> new double[1]);
                floor = Math.min(floor, norm[i]);
            }
            normalised.add(byDoc);
            floors[l] = list.length == 0 ? 0.0 : floor;
        }
        for (Map.Entry<Key, double[]> entry : fused.entrySet()) {
            double sum = 0.0;
            for (int l = 0; l < lists.size(); l++) {
                sum += weights[l] * normalised.get(l).getOrDefault(entry.getKey(), floors[l]);
            }
            entry.getValue()[0] = sum;
        }
        return top(fused, window, "zscore".equals(normalizer));
    }

    /** min-max to [0, 1] (all equal: all 1) or z-score with the population deviation (all equal: all 0). */
    public static double[] normalize(double[] scores, String method) {
        int n = scores.length;
        double[] out = new double[n];
        if (n == 0) {
            return out;
        }
        if ("zscore".equals(method)) {
            double mean = 0.0;
            for (double s : scores) {
                mean += s;
            }
            mean /= n;
            double var = 0.0;
            for (double s : scores) {
                var += (s - mean) * (s - mean);
            }
            double std = Math.sqrt(var / n);
            for (int i = 0; i < n; i++) {
                out[i] = std == 0 ? 0.0 : (scores[i] - mean) / std;
            }
            return out;
        }
        double low = Arrays.stream(scores).min().getAsDouble();
        double high = Arrays.stream(scores).max().getAsDouble();
        for (int i = 0; i < n; i++) {
            out[i] = high == low ? 1.0 : (scores[i] - low) / (high - low);
        }
        return out;
    }

    /** The blend's normalisation over the reranked window: min-max, or by rank (best 1, worst 0). */
    public static double[] windowNormalize(double[] scores, String method) {
        int n = scores.length;
        if (!"rank".equals(method)) {
            return normalize(scores, "minmax");
        }
        double[] out = new double[n];
        if (n == 1) {
            out[0] = 1.0;
            return out;
        }
        Integer[] order = byScore(scores);
        for (int position = 0; position < n; position++) {
            out[order[position]] = 1.0 - (double) position / (n - 1);
        }
        return out;
    }

    /** weight * norm(rerank) + (1 - weight) * norm(first stage); weight 1 is the plain rerank score. */
    public static double[] blend(double[] firstStage, double[] rerank, double weight, String normalization) {
        if (weight >= 1.0) {
            return rerank.clone();
        }
        double[] first = windowNormalize(firstStage, normalization);
        double[] cross = windowNormalize(rerank, normalization);
        double[] out = new double[first.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = weight * cross[i] + (1.0 - weight) * first[i];
        }
        return out;
    }

    /** Indexes of {@code scores} best first; equal scores keep input order (a stable sort). */
    public static Integer[] byScore(double[] scores) {
        Integer[] order = new Integer[scores.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        Arrays.sort(order, (a, b) -> Double.compare(scores[b], scores[a]));
        return order;
    }

    /**
     * Floats for scores already sorted best first that strictly decrease and stay above zero, so
     * Elasticsearch's sort by score keeps this order (see the class comment).
     */
    public static float[] ordered(double[] sortedScores) {
        int n = sortedScores.length;
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            float value = (float) sortedScores[i];
            if (i > 0 && value >= out[i - 1]) {
                value = Math.nextDown(out[i - 1]);
            }
            if (value <= 0f) {
                value = Float.MIN_VALUE * (n - i); // the tail at or below zero: tiny, positive, decreasing
            }
            out[i] = value;
        }
        return out;
    }

    /** The docs scoring at least {@code minScore} (all when it is null), ranks renumbered from 1. */
    public static RankDoc[] atLeast(RankDoc[] docs, Float minScore) {
        if (minScore == null) {
            return docs;
        }
        List<RankDoc> kept = new ArrayList<>();
        for (RankDoc doc : docs) {
            if (doc.score >= minScore) {
                doc.rank = kept.size() + 1;
                kept.add(doc);
            }
        }
        return kept.toArray(new RankDoc[0]);
    }

    /** The best {@code window} docs as rank docs; {@code shift}: lift the scores by one constant so
     * the lowest is 1 when it is not positive (z-scores go negative), keeping their differences. */
    private static RankDoc[] top(Map<Key, double[]> scores, int window, boolean shift) {
        List<Map.Entry<Key, double[]>> entries = new ArrayList<>(scores.entrySet());
        entries.sort((a, b) -> Double.compare(b.getValue()[0], a.getValue()[0])); // stable: first appearance wins ties
        int n = Math.min(window, entries.size());
        double[] sorted = new double[n];
        for (int i = 0; i < n; i++) {
            sorted[i] = entries.get(i).getValue()[0];
        }
        if (shift && n > 0 && sorted[n - 1] <= 0.0) {
            double by = 1.0 - sorted[n - 1];
            for (int i = 0; i < n; i++) {
                sorted[i] += by;
            }
        }
        float[] floats = ordered(sorted);
        RankDoc[] docs = new RankDoc[n];
        for (int i = 0; i < n; i++) {
            Key key = entries.get(i).getKey();
            docs[i] = new RankDoc(key.doc(), floats[i], key.shard());
            docs[i].rank = i + 1;
        }
        return docs;
    }
}
