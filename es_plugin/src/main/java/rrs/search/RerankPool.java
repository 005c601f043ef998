package rrs.search;

import org.elasticsearch.action.ActionListener;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.SecureSetting;
import org.elasticsearch.common.settings.SecureString;
import org.elasticsearch.common.settings.Setting;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.util.concurrent.ThreadContext;
import org.elasticsearch.core.TimeValue;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentFactory;
import org.elasticsearch.xcontent.XContentParser;
import org.elasticsearch.xcontent.XContentParserConfiguration;
import org.elasticsearch.xcontent.XContentType;

import java.io.Closeable;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The node's client of a text-embeddings-inference-compatible {@code POST /rerank} pool (our
 * {@code rrs serve --role reranker}, or TEI). Its address, key and timeout are node settings,
 * never request parameters: a search cannot make the node call an address it chose. Calls are
 * asynchronous (the JDK HttpClient's {@code sendAsync}); no search thread waits on the pool.
 */
public final class RerankPool implements Closeable {

    /** The pool's base URL ({@code http(s)://host:port}); empty: no pool, rrs_rerank skips. Dynamic (cluster admin). */
    public static final Setting<String> URL = Setting.simpleString(
        "rrs.reranker.url",
        "",
        RerankPool::checkUrl,
        Setting.Property.NodeScope,
        Setting.Property.Dynamic
    );
    /** How long one rerank call may take, connection included; past it the search answers in first-stage order. */
    public static final Setting<TimeValue> TIMEOUT = Setting.timeSetting(
        "rrs.reranker.timeout",
        TimeValue.timeValueSeconds(3),
        TimeValue.timeValueMillis(1),
        Setting.Property.NodeScope,
        Setting.Property.Dynamic
    );
    /** Bearer key for the pool, from the keystore ({@code elasticsearch-keystore add rrs.reranker.api_key}). */
    public static final Setting<SecureString> API_KEY = SecureSetting.secureString("rrs.reranker.api_key", null);

    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private final ThreadContext threadContext;
    private final String apiKey;
    private volatile String url;
    private volatile TimeValue timeout;

    public RerankPool(Settings settings, ClusterSettings clusterSettings, ThreadContext threadContext) {
        this.threadContext = threadContext;
        try (SecureString key = API_KEY.get(settings)) {
            this.apiKey = key.length() == 0 ? null : key.toString();
        }
        this.url = URL.get(settings);
        this.timeout = TIMEOUT.get(settings);
        clusterSettings.addSettingsUpdateConsumer(URL, value -> this.url = value);
        clusterSettings.addSettingsUpdateConsumer(TIMEOUT, value -> this.timeout = value);
    }

    ThreadContext threadContext() {
        return threadContext;
    }

    /** The pool's URL now ("" when unset): rrs_embed's pool when rrs.embedder.url is unset (one pool serves both). */
    public String url() {
        return url;
    }

    /** The pool's key (or null), for rrs_embed calling the same pool. */
    public String apiKey() {
        return apiKey;
    }

    private static void checkUrl(String value) {
        if (value.isEmpty()) {
            return;
        }
        String lower = value.toLowerCase(Locale.ROOT);
        if ((lower.startsWith("http://") || lower.startsWith("https://")) == false) {
            throw new IllegalArgumentException("[rrs.reranker.url] must start with http:// or https://, got [" + value + "]");
        }
        URI.create(value);
    }

    /**
     * Scores of {@code texts} for {@code query}, in input order, to {@code listener}; every failure
     * (no pool set, unreachable, slow, an error status, an answer that is not a rank list) is
     * an {@link IOException} whose message says which.
     */
    public void rerank(String query, List<String> texts, ActionListener<double[]> listener) {
        String base = url;
        TimeValue limit = timeout;
        if (base.isEmpty()) {
            listener.onFailure(new IOException("no reranker pool is set (rrs.reranker.url)"));
            return;
        }
        HttpRequest request;
        try {
            HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(base.replaceAll("/+$", "") + "/rerank"))
                .timeout(Duration.ofMillis(limit.millis()))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body(query, texts)));
            if (apiKey != null) {
                builder.header("Authorization", "Bearer " + apiKey);
            }
            request = builder.build();
        } catch (IOException | IllegalArgumentException e) {
            listener.onFailure(new IOException("cannot build the rerank request: " + e.getMessage(), e));
            return;
        }
        long deadline = System.nanoTime() + limit.nanos();
        send(request, texts.size(), base, limit, deadline, true, listener);
    }

    private void send(HttpRequest request, int count, String base, TimeValue limit, long deadline, boolean mayRetry,
                      ActionListener<double[]> listener) {
        long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
        http.sendAsync(request, HttpResponse.BodyHandlers.ofByteArray())
            .orTimeout(left, TimeUnit.MILLISECONDS)
            .whenComplete((response, error) -> {
                if (error != null && mayRetry && stale(error) && System.nanoTime() < deadline) {
                    // a kept-alive connection the pool had closed (gunicorn's keepalive is seconds, the JDK's
                    // minutes): the request never reached it; a rerank is safe to send again, once
                    send(request, count, base, limit, deadline, false, listener);
                    return;
                }
                if (error != null) {
                    listener.onFailure(new IOException(describe(error, base, limit), error));
                    return;
                }
                double[] scores;
                try {
                    scores = parse(response, count);
                } catch (IOException e) {
                    listener.onFailure(e);
                    return;
                }
                listener.onResponse(scores);
            });
    }

    /** TEI's request, with the options the service sends (service/remote_rerank.py). */
    static String body(String query, List<String> texts) throws IOException {
        try (XContentBuilder json = XContentFactory.jsonBuilder()) {
            json.startObject()
                .field("query", query)
                .stringListField("texts", texts)
                .field("truncate", true)
                .field("raw_scores", false)
                .field("truncation_direction", "Right")
                .endObject();
            return org.elasticsearch.common.Strings.toString(json);
        }
    }

    /** TEI's answer, {@code [{"index": i, "score": s}, ...]}, back into one score per text in input order. */
    static double[] parse(HttpResponse<byte[]> response, int count) throws IOException {
        int status = response.statusCode();
        if (status != 200) {
            throw new IOException("the reranker pool answered HTTP " + status);
        }
        double[] scores = new double[count];
        boolean[] seen = new boolean[count];
        try (
            XContentParser parser = XContentType.JSON.xContent().createParser(XContentParserConfiguration.EMPTY, response.body())
        ) {
            for (Object item : parser.list()) {
                Map<?, ?> rank = (Map<?, ?>) item;
                int index = ((Number) rank.get("index")).intValue();
                scores[index] = ((Number) rank.get("score")).doubleValue();
                seen[index] = true;
            }
        } catch (RuntimeException | IOException e) {
            throw new IOException("the reranker pool's answer is not a rank list (" + e.getClass().getSimpleName() + ")", e);
        }
        for (boolean s : seen) {
            if (s == false) {
                throw new IOException("the reranker pool left some texts unscored");
            }
        }
        return scores;
    }

    /** A connection that broke before an answer (not a refusal, not the timeout): worth one more try. */
    static boolean stale(Throwable error) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        return cause instanceof IOException && (cause instanceof ConnectException || cause instanceof HttpTimeoutException) == false;
    }

    private static String describe(Throwable error, String base, TimeValue limit) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        if (cause instanceof TimeoutException || cause instanceof HttpTimeoutException) {
            return "the reranker pool did not answer within " + limit + " (rrs.reranker.timeout)";
        }
        if (cause instanceof ConnectException) {
            return "the reranker pool at " + base + " is unreachable";
        }
        return "the reranker pool at " + base + " failed: " + cause.getClass().getSimpleName();
    }

    @Override
    public void close() {
        http.shutdownNow();
    }
}
