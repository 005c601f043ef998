package rrs.embed;

import org.elasticsearch.ElasticsearchStatusException;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.SecureSetting;
import org.elasticsearch.common.settings.SecureString;
import org.elasticsearch.common.settings.Setting;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.util.concurrent.ThreadContext;
import org.elasticsearch.core.TimeValue;
import org.elasticsearch.rest.RestStatus;
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
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * The node's client of a text-embeddings-inference-compatible {@code POST /embed} pool: our
 * {@code rrs serve --role reranker} with the bi-encoder loaded (RRS_POOL_MODELS), or TEI. Its
 * address, key and timeouts are node settings, never request parameters. Without
 * {@code rrs.embedder.url} it is the reranker's pool ({@code rrs.reranker.url} and its key): one
 * pool that serves both models.
 *
 * <p>Each call asks {@code /embed} for unit vectors ({@code normalize}) of texts cut to the model's
 * length ({@code truncate}), with the pool's {@code query} or {@code passage} prompt when its
 * {@code /info} names one (ours says which prompts RRS_QUERY_PROMPT and RRS_PASSAGE_PROMPT set):
 * exactly what {@code POST /search} and {@code rrs ingest} embed. {@code /info} also says which
 * bi-encoder the pool serves; it is read once per 10 s and pool address, and again after a failed call.
 *
 * <p>Every failure is an {@link ElasticsearchStatusException} whose message says what: 503 for a
 * pool that is not set, unreachable, answers an error or garbage; 504 for one that does not answer
 * within the timeout.
 */
public final class EmbedPool implements Closeable {

    /** The pool's base URL; empty: the reranker's pool (rrs.reranker.url). Dynamic (cluster admin). */
    public static final Setting<String> URL = Setting.simpleString(
        "rrs.embedder.url",
        "",
        EmbedPool::checkUrl,
        Setting.Property.NodeScope,
        Setting.Property.Dynamic
    );
    /** How long a query's embedding may take (rrs_embed in a search); past it the search is a 504, or falls back. */
    public static final Setting<TimeValue> TIMEOUT = Setting.timeSetting(
        "rrs.embedder.timeout",
        TimeValue.timeValueSeconds(3),
        TimeValue.timeValueMillis(1),
        Setting.Property.NodeScope,
        Setting.Property.Dynamic
    );
    /** How long one batch of passages may take (the rrs_embed ingest processor). */
    public static final Setting<TimeValue> INGEST_TIMEOUT = Setting.timeSetting(
        "rrs.embedder.ingest_timeout",
        TimeValue.timeValueSeconds(60),
        TimeValue.timeValueMillis(1),
        Setting.Property.NodeScope,
        Setting.Property.Dynamic
    );
    /** Most passages in one /embed call (also capped by the pool's own max_client_batch_size). */
    public static final Setting<Integer> BATCH_SIZE = Setting.intSetting(
        "rrs.embedder.batch_size",
        32,
        1,
        Setting.Property.NodeScope,
        Setting.Property.Dynamic
    );
    /** How long the processor gathers the passages of concurrent documents before it calls the pool. */
    public static final Setting<TimeValue> BATCH_WAIT = Setting.timeSetting(
        "rrs.embedder.batch_wait",
        TimeValue.timeValueMillis(5),
        TimeValue.ZERO,
        Setting.Property.NodeScope,
        Setting.Property.Dynamic
    );
    /** Bearer key for rrs.embedder.url, from the keystore; a shared pool uses rrs.reranker.api_key. */
    public static final Setting<SecureString> API_KEY = SecureSetting.secureString("rrs.embedder.api_key", null);

    /** How long a pool's /info answer (its model, prompts and batch limit) is trusted: 10 s. */
    static final long INFO_TTL_NANOS = TimeUnit.SECONDS.toNanos(10);

    /** What the query and the passage are embedded as: the pool's prompt names (service/embed.py). */
    public enum Kind {
        QUERY("query"),
        PASSAGE("passage");

        final String prompt;

        Kind(String prompt) {
            this.prompt = prompt;
        }
    }

    /** What a pool's /info says: the bi-encoder it serves, which prompts are set, how many texts a call may carry. */
    record Info(String model, boolean queryPrompt, boolean passagePrompt, int maxBatch, long fetchedAt) {
        boolean prompted(Kind kind) {
            return kind == Kind.QUERY ? queryPrompt : passagePrompt;
        }
    }

    /** Vectors in input order, and the model that made them. */
    public record Vectors(float[][] vectors, String model) {}

    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    private final ThreadContext threadContext;
    private final String apiKey;
    private final Supplier<String> sharedUrl;
    private final Supplier<String> sharedKey;
    private final Map<String, Info> infos = new ConcurrentHashMap<>();
    private volatile String url;
    private volatile TimeValue timeout;
    private volatile TimeValue ingestTimeout;
    private volatile int batchSize;
    private volatile TimeValue batchWait;

    /**
     * @param sharedUrl the reranker pool's URL (rrs.reranker.url), used when rrs.embedder.url is empty
     * @param sharedKey the reranker pool's key, sent to that shared pool
     */
    public EmbedPool(Settings settings, ClusterSettings clusterSettings, ThreadContext threadContext, Supplier<String> sharedUrl,
                     Supplier<String> sharedKey) {
        this.threadContext = threadContext;
        this.sharedUrl = sharedUrl;
        this.sharedKey = sharedKey;
        try (SecureString key = API_KEY.get(settings)) {
            this.apiKey = key.length() == 0 ? null : key.toString();
        }
        this.url = URL.get(settings);
        this.timeout = TIMEOUT.get(settings);
        this.ingestTimeout = INGEST_TIMEOUT.get(settings);
        this.batchSize = BATCH_SIZE.get(settings);
        this.batchWait = BATCH_WAIT.get(settings);
        clusterSettings.addSettingsUpdateConsumer(URL, value -> this.url = value);
        clusterSettings.addSettingsUpdateConsumer(TIMEOUT, value -> this.timeout = value);
        clusterSettings.addSettingsUpdateConsumer(INGEST_TIMEOUT, value -> this.ingestTimeout = value);
        clusterSettings.addSettingsUpdateConsumer(BATCH_SIZE, value -> this.batchSize = value);
        clusterSettings.addSettingsUpdateConsumer(BATCH_WAIT, value -> this.batchWait = value);
    }

    public static List<Setting<?>> settings() {
        return List.of(URL, TIMEOUT, INGEST_TIMEOUT, BATCH_SIZE, BATCH_WAIT, API_KEY);
    }

    ThreadContext threadContext() {
        return threadContext;
    }

    TimeValue queryTimeout() {
        return timeout;
    }

    TimeValue ingestTimeout() {
        return ingestTimeout;
    }

    int batchSize() {
        return batchSize;
    }

    TimeValue batchWait() {
        return batchWait;
    }

    private static void checkUrl(String value) {
        if (value.isEmpty()) {
            return;
        }
        String lower = value.toLowerCase(Locale.ROOT);
        if ((lower.startsWith("http://") || lower.startsWith("https://")) == false) {
            throw new IllegalArgumentException("[rrs.embedder.url] must start with http:// or https://, got [" + value + "]");
        }
        URI.create(value);
    }

    /** The pool's base URL, without trailing slashes; empty when neither setting names one. */
    String base() {
        String own = url;
        return (own.isEmpty() ? sharedUrl.get() : own).replaceAll("/+$", "");
    }

    private String key() {
        return url.isEmpty() ? sharedKey.get() : apiKey;
    }

    /** The cached /info of the pool, or a fresh one within {@code limit}; its failures as {@link #embed}'s. */
    void info(TimeValue limit, String limitName, ActionListener<Info> listener) {
        String base = base();
        if (base.isEmpty()) {
            listener.onFailure(unset());
            return;
        }
        Info known = infos.get(base);
        if (known != null && System.nanoTime() - known.fetchedAt() < INFO_TTL_NANOS) {
            listener.onResponse(known);
            return;
        }
        send(base, "/info", null, limit, limitName, ActionListener.wrap(body -> {
            Info info = parseInfo(body, base);
            infos.put(base, info);
            listener.onResponse(info);
        }, listener::onFailure));
    }

    /** The pool's max_client_batch_size, when a recent /info said it; else no cap. */
    int knownMaxBatch() {
        Info known = infos.get(base());
        return known == null ? Integer.MAX_VALUE : known.maxBatch();
    }

    /** Forget what the pool said of itself (a call failed: it may have been restarted with another model). */
    void forget() {
        infos.remove(base());
    }

    /**
     * Vectors of {@code texts} as {@code kind}, in input order, to {@code listener}, from one
     * {@code /embed} call within {@code limit} (its setting's name in {@code limitName}, for the message).
     * {@code vet} sees the pool's model first and may refuse it (an exception, which the listener gets
     * instead of any call to /embed), or accept it (null).
     */
    public void embed(List<String> texts, Kind kind, TimeValue limit, String limitName, Function<String, Exception> vet,
                      ActionListener<Vectors> listener) {
        info(limit, limitName, ActionListener.wrap(info -> {
            Exception refused = vet == null ? null : vet.apply(info.model());
            if (refused != null) {
                listener.onFailure(refused);
                return;
            }
            String body;
            try {
                body = body(texts, info.prompted(kind) ? kind.prompt : null);
            } catch (IOException e) {
                listener.onFailure(new ElasticsearchStatusException("cannot build the embed request: " + e.getMessage(),
                    RestStatus.INTERNAL_SERVER_ERROR, e));
                return;
            }
            String base = base();
            send(base, "/embed", body, limit, limitName, ActionListener.wrap(answer -> {
                float[][] vectors = parseVectors(answer, texts.size(), base);
                listener.onResponse(new Vectors(vectors, info.model()));
            }, e -> {
                forget();
                listener.onFailure(e);
            }));
        }, listener::onFailure));
    }

    /** TEI's /embed request: unit vectors, long texts cut to the model's length (as the encoder itself cuts them). */
    static String body(List<String> texts, String promptName) throws IOException {
        try (XContentBuilder json = XContentFactory.jsonBuilder()) {
            json.startObject().stringListField("inputs", texts).field("normalize", true).field("truncate", true);
            if (promptName != null) {
                json.field("prompt_name", promptName);
            }
            json.endObject();
            return org.elasticsearch.common.Strings.toString(json);
        }
    }

    private void send(String base, String path, String body, TimeValue limit, String limitName, ActionListener<byte[]> listener) {
        HttpRequest request;
        try {
            HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofMillis(limit.millis()));
            if (body == null) {
                builder.GET();
            } else {
                builder.header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body));
            }
            String key = key();
            if (key != null) {
                builder.header("Authorization", "Bearer " + key);
            }
            request = builder.build();
        } catch (IllegalArgumentException e) {
            listener.onFailure(unavailable("cannot call the embedding pool at " + base + ": " + e.getMessage(), e));
            return;
        }
        long deadline = System.nanoTime() + limit.nanos();
        sendOnce(request, base, path, limit, limitName, deadline, true, listener);
    }

    private void sendOnce(HttpRequest request, String base, String path, TimeValue limit, String limitName, long deadline,
                          boolean mayRetry, ActionListener<byte[]> listener) {
        long left = Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
        http.sendAsync(request, HttpResponse.BodyHandlers.ofByteArray())
            .orTimeout(left, TimeUnit.MILLISECONDS)
            .whenComplete((response, error) -> {
                if (error != null && mayRetry && stale(error) && System.nanoTime() < deadline) {
                    // a kept-alive connection the pool had closed (gunicorn's keepalive is seconds, the JDK's
                    // minutes): the request never reached it; /embed and /info are safe to send again, once
                    sendOnce(request, base, path, limit, limitName, deadline, false, listener);
                } else if (error != null) {
                    listener.onFailure(describe(error, base, limit, limitName));
                } else if (response.statusCode() != 200) {
                    listener.onFailure(unavailable("the embedding pool at " + base + " answered HTTP " + response.statusCode()
                        + " to " + path + said(response), null));
                } else {
                    try {
                        listener.onResponse(response.body());
                    } catch (RuntimeException e) {
                        listener.onFailure(e);
                    }
                }
            });
    }

    /** The pool's own words for an error: our X-Error-Message header (TEI's too), else the body's start. */
    private static String said(HttpResponse<byte[]> response) {
        String message = response.headers().firstValue("X-Error-Message").orElse(null);
        if (message == null) {
            message = new String(response.body(), StandardCharsets.UTF_8).strip();
            message = message.length() > 300 ? message.substring(0, 300) + "..." : message;
        }
        return message.isEmpty() ? "" : ": " + message;
    }

    @SuppressWarnings("unchecked")
    static Info parseInfo(byte[] body, String base) {
        Map<String, Object> info;
        try (XContentParser parser = XContentType.JSON.xContent().createParser(XContentParserConfiguration.EMPTY, body)) {
            info = parser.map();
        } catch (RuntimeException | IOException e) {
            throw unavailable("the embedding pool at " + base + " answered /info with something that is not JSON", e);
        }
        // ours: {"embedding": {"model_id", "prompts": {"query", "passage"}}, "max_client_batch_size"}; TEI: {"model_id",
        // "model_type": {"embedding": {...}}, "max_client_batch_size"}
        Object embedding = info.get("embedding");
        String model = null;
        boolean query = false;
        boolean passage = false;
        if (embedding instanceof Map<?, ?> ours) {
            model = ours.get("model_id") instanceof String s ? s : null;
            if (ours.get("prompts") instanceof Map<?, ?> prompts) {
                query = prompts.get("query") instanceof String s && s.isEmpty() == false;
                passage = prompts.get("passage") instanceof String s && s.isEmpty() == false;
            }
        } else if (info.containsKey("serves") && embedding == null) {
            throw unavailable("the pool at " + base + " does not serve embeddings (its RRS_POOL_MODELS lacks embed)", null);
        } else if (info.get("model_id") instanceof String s) {
            model = s; // TEI: the one model it serves
        }
        if (model == null) {
            throw unavailable("the embedding pool at " + base + " does not say in /info which model it serves", null);
        }
        int maxBatch = info.get("max_client_batch_size") instanceof Number n && n.intValue() > 0 ? n.intValue() : Integer.MAX_VALUE;
        return new Info(model, query, passage, maxBatch, System.nanoTime());
    }

    /** TEI's answer, one vector per text: {@code [[...], ...]}. */
    static float[][] parseVectors(byte[] body, int count, String base) {
        List<Object> rows;
        try (XContentParser parser = XContentType.JSON.xContent().createParser(XContentParserConfiguration.EMPTY, body)) {
            rows = parser.list();
        } catch (RuntimeException | IOException e) {
            throw unavailable("the embedding pool at " + base + " answered something that is not a list of vectors", e);
        }
        if (rows.size() != count) {
            throw unavailable("the embedding pool at " + base + " answered " + rows.size() + " vectors for " + count + " texts", null);
        }
        float[][] vectors = new float[count][];
        for (int i = 0; i < count; i++) {
            List<?> row = rows.get(i) instanceof List<?> list ? list : List.of();
            if (row.isEmpty()) {
                throw unavailable("the embedding pool at " + base + " answered something that is not a list of vectors", null);
            }
            float[] vector = new float[row.size()];
            for (int j = 0; j < vector.length; j++) {
                if (row.get(j) instanceof Number number) {
                    vector[j] = number.floatValue();
                } else {
                    throw unavailable("the embedding pool at " + base + " answered a vector with a non-number in it", null);
                }
            }
            vectors[i] = vector;
        }
        return vectors;
    }

    private static ElasticsearchStatusException unset() {
        return unavailable("no embedding pool is set: rrs.embedder.url, or rrs.reranker.url for a pool that serves both", null);
    }

    static ElasticsearchStatusException unavailable(String message, Throwable cause) {
        return new ElasticsearchStatusException(message, RestStatus.SERVICE_UNAVAILABLE, cause);
    }

    /** A connection that broke before an answer (not a refusal, not the timeout): worth one more try. */
    static boolean stale(Throwable error) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        return cause instanceof IOException && (cause instanceof ConnectException || cause instanceof HttpTimeoutException) == false;
    }

    private static ElasticsearchStatusException describe(Throwable error, String base, TimeValue limit, String limitName) {
        Throwable cause = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        if (cause instanceof TimeoutException || cause instanceof HttpTimeoutException) {
            return new ElasticsearchStatusException("the embedding pool at " + base + " did not answer within " + limit + " ("
                + limitName + ")", RestStatus.GATEWAY_TIMEOUT);
        }
        if (cause instanceof ConnectException) {
            return unavailable("the embedding pool at " + base + " is unreachable", null);
        }
        return unavailable("the embedding pool at " + base + " failed: " + cause.getClass().getSimpleName()
            + (cause.getMessage() == null ? "" : " " + cause.getMessage()), null);
    }

    @Override
    public void close() {
        http.shutdownNow();
    }
}
