package rrs.embed;

import org.elasticsearch.ElasticsearchStatusException;
import org.elasticsearch.TransportVersion;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.support.ContextPreservingActionListener;
import org.elasticsearch.client.internal.Client;
import org.elasticsearch.common.io.stream.StreamInput;
import org.elasticsearch.common.io.stream.StreamOutput;
import org.elasticsearch.common.io.stream.Writeable;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.search.vectors.QueryVectorBuilder;
import org.elasticsearch.xcontent.ConstructingObjectParser;
import org.elasticsearch.xcontent.ParseField;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentParser;

import java.io.IOException;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.BiFunction;
import java.util.function.Supplier;

import static org.elasticsearch.xcontent.ConstructingObjectParser.constructorArg;
import static org.elasticsearch.xcontent.ConstructingObjectParser.optionalConstructorArg;

/**
 * {@code rrs_embed}, a query vector builder: the query text in, its vector from the node's
 * embedding pool ({@link EmbedPool}) out, as {@code POST /search} embeds a query.
 *
 * <pre>{"knn": {"field": "embedding", "query_vector_builder": {"rrs_embed": {"text": "vitamin d"}}, "k": 100,
 *   "num_candidates": 200}}</pre>
 *
 * <p>Inside {@code rrs_rrf}, {@code rrs_linear} and {@code rrs_rerank} the retriever embeds its
 * children's texts first ({@link EmbedStep}), so that with {@code "fallback": "bm25"} a pool that is
 * down or slow drops the kNN child (the others answer, and a warning header says so) instead of
 * failing the search. Anywhere else (a top-level {@code knn}, a {@code knn} retriever or query) the
 * builder calls the pool itself and a failure fails the search: 503, or 504 past
 * {@code rrs.embedder.timeout}. Either way the pool's model must be the one each targeted index was
 * built with ({@code _meta.bi_encoder}), else a 400 that says so.
 */
public final class EmbedQueryVectorBuilder implements QueryVectorBuilder {

    public static final String NAME = "rrs_embed";
    static final ParseField TEXT = new ParseField("text");
    static final ParseField FALLBACK = new ParseField("fallback");
    static final String NO_FALLBACK = "none";
    static final String BM25 = "bm25";

    static ConstructingObjectParser<EmbedQueryVectorBuilder, Void> parser(Supplier<EmbedServices> services) {
        ConstructingObjectParser<EmbedQueryVectorBuilder, Void> parser = new ConstructingObjectParser<>(
            NAME,
            false,
            args -> new EmbedQueryVectorBuilder(text((String) args[0]), fallback((String) args[1]), services)
        );
        parser.declareString(constructorArg(), TEXT);
        parser.declareString(optionalConstructorArg(), FALLBACK);
        return parser;
    }

    /** The parser ES calls for {@code "query_vector_builder": {"rrs_embed": {...}}}; an enclosing retriever of ours collects it. */
    public static BiFunction<XContentParser, Void, EmbedQueryVectorBuilder> fromXContent(Supplier<EmbedServices> services) {
        ConstructingObjectParser<EmbedQueryVectorBuilder, Void> parser = parser(services);
        return (p, c) -> EmbedStep.register(parser.apply(p, c));
    }

    public static Writeable.Reader<EmbedQueryVectorBuilder> reader(Supplier<EmbedServices> services) {
        return in -> new EmbedQueryVectorBuilder(in, services);
    }

    static String text(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("[" + NAME + "] [text] must not be blank: it is the query to embed");
        }
        return text;
    }

    static String fallback(String fallback) {
        if (fallback == null || fallback.equals(NO_FALLBACK)) {
            return NO_FALLBACK;
        }
        if (fallback.equals(BM25)) {
            return BM25;
        }
        throw new IllegalArgumentException("[" + NAME + "] [fallback] must be one of none, bm25; got [" + fallback + "]");
    }

    private enum State { NEW, REQUESTED, DONE, FAILED }

    private final String text;
    private final String fallback;
    private final Supplier<EmbedServices> services;
    // what the enclosing retriever's embedding step left here; this request's parse only, never serialised
    private volatile State state = State.NEW;
    private volatile float[] vector;
    private volatile ElasticsearchStatusException failure;
    private volatile boolean warned;

    EmbedQueryVectorBuilder(String text, String fallback, Supplier<EmbedServices> services) {
        this.text = text;
        this.fallback = fallback;
        this.services = services;
    }

    EmbedQueryVectorBuilder(StreamInput in, Supplier<EmbedServices> services) throws IOException {
        this(in.readString(), in.readString(), services);
    }

    @Override
    public void writeTo(StreamOutput out) throws IOException {
        out.writeString(text);
        out.writeString(fallback);
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
    public XContentBuilder toXContent(XContentBuilder builder, Params params) throws IOException {
        builder.startObject().field(TEXT.getPreferredName(), text);
        if (fallback.equals(NO_FALLBACK) == false) {
            builder.field(FALLBACK.getPreferredName(), fallback);
        }
        return builder.endObject();
    }

    String text() {
        return text;
    }

    boolean fallsBack() {
        return fallback.equals(BM25);
    }

    EmbedServices services() {
        EmbedServices found = services.get();
        if (found == null) {
            throw new IllegalStateException("[" + NAME + "] is not ready: the plugin's components are not made yet");
        }
        return found;
    }

    // --- the state an enclosing retriever's EmbedStep sets -------------------------------------

    /** True once: the caller is to embed this text now. */
    synchronized boolean request() {
        if (state != State.NEW) {
            return false;
        }
        state = State.REQUESTED;
        return true;
    }

    synchronized void done(float[] vector) {
        this.vector = vector;
        this.state = State.DONE;
    }

    synchronized void failed(ElasticsearchStatusException failure) {
        this.failure = failure;
        this.state = State.FAILED;
    }

    boolean hasFailed() {
        return state == State.FAILED;
    }

    ElasticsearchStatusException failure() {
        return failure;
    }

    /** True the first time it is asked after a failure: that one search response carries the warning. */
    synchronized boolean warnOnce() {
        if (warned) {
            return false;
        }
        warned = true;
        return true;
    }

    @Override
    public void buildVector(Client client, ActionListener<float[]> listener) {
        State now = state;
        if (now == State.DONE) {
            listener.onResponse(vector);
            return;
        }
        if (now == State.FAILED) {
            listener.onFailure(failure);
            return;
        }
        // not inside one of our retrievers (or it has not embedded yet): embed here, no fallback possible
        EmbedServices found = services();
        ActionListener<float[]> answer = ContextPreservingActionListener.wrapPreservingContext(listener, found.threadContext());
        Map<String, String> wanted = found.models().modelsOf(SearchTargets.current(found.threadContext()));
        EmbedPool pool = found.pool();
        pool.embed(
            List.of(text),
            EmbedPool.Kind.QUERY,
            pool.queryTimeout(),
            "rrs.embedder.timeout",
            model -> IndexModels.mismatch(NAME, wanted, model, pool.base()),
            ActionListener.wrap(vectors -> answer.onResponse(vectors.vectors()[0]), e -> answer.onFailure(alone(e)))
        );
    }

    /** A failure outside our retrievers, with the reason [fallback] did not apply. */
    private Exception alone(Exception e) {
        if (e instanceof ElasticsearchStatusException status && status.status() != RestStatus.BAD_REQUEST) {
            String why = fallsBack()
                ? " ([fallback] bm25 drops a kNN child inside rrs_rrf, rrs_linear or rrs_rerank; here there is nothing to drop it from)"
                : "";
            return new ElasticsearchStatusException("[" + NAME + "] " + status.getMessage() + why, status.status(), e);
        }
        return e;
    }

    @Override
    public boolean equals(Object o) {
        if (this == o) {
            return true;
        }
        if (o == null || getClass() != o.getClass()) {
            return false;
        }
        EmbedQueryVectorBuilder that = (EmbedQueryVectorBuilder) o;
        return text.equals(that.text) && fallback.equals(that.fallback);
    }

    @Override
    public int hashCode() {
        return Objects.hash(text, fallback);
    }
}
