package rrs.embed;

import org.elasticsearch.ElasticsearchStatusException;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.support.ContextPreservingActionListener;
import org.elasticsearch.common.CheckedSupplier;
import org.elasticsearch.common.logging.HeaderWarning;
import org.elasticsearch.index.query.QueryRewriteContext;
import org.elasticsearch.rest.RestStatus;

import java.io.IOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How our compound retrievers ({@code rrs_rrf}, {@code rrs_linear}, {@code rrs_rerank}) embed the
 * {@code rrs_embed} texts of their children before the children are rewritten, in one call to the
 * pool, so that a failure can drop a child instead of failing the search ({@code "fallback": "bm25"}).
 *
 * <p>Parsing: each child of ours is parsed inside {@link #collect}, which gathers the builders
 * parsed in it (not those of a nested retriever of ours, which gathers its own). Rewriting: the
 * retriever's {@code doRewrite} calls {@link #before} first. The first time it registers the one
 * asynchronous pool call and the retriever returns a copy of itself, so that Elasticsearch runs
 * the call before the next round; in that round the builders hand out their vectors at once, or,
 * where the pool failed and every failed builder falls back, {@link #before} names the children
 * to drop and a {@code Warning} header says why.
 */
public final class EmbedStep {

    static final String FELL_BACK = "rrs_embed fell back to bm25, the kNN retriever is left out: ";

    private static final ThreadLocal<List<EmbedQueryVectorBuilder>> SCOPE = new ThreadLocal<>();

    private EmbedStep() {}

    /** A parsed child and the rrs_embed builders directly in it. */
    public record Parsed<T>(T value, List<EmbedQueryVectorBuilder> embeds) {}

    /** What {@link #before} asks of the retriever: nothing; return a copy (the embedding call runs first); or drop children. */
    public record Outcome(boolean requested, List<Integer> dropped) {
        static final Outcome NOTHING = new Outcome(false, List.of());

        public boolean nothing() {
            return requested == false && dropped.isEmpty();
        }
    }

    /** Parse one child; the builders parsed meanwhile (outside nested retrievers of ours) come with it. */
    public static <T> Parsed<T> collect(CheckedSupplier<T, IOException> parse) throws IOException {
        List<EmbedQueryVectorBuilder> previous = SCOPE.get();
        List<EmbedQueryVectorBuilder> found = new ArrayList<>();
        SCOPE.set(found);
        try {
            T value = parse.get();
            return new Parsed<>(value, List.copyOf(found));
        } finally {
            if (previous == null) {
                SCOPE.remove();
            } else {
                SCOPE.set(previous);
            }
        }
    }

    static EmbedQueryVectorBuilder register(EmbedQueryVectorBuilder builder) {
        List<EmbedQueryVectorBuilder> scope = SCOPE.get();
        if (scope != null) {
            scope.add(builder);
        }
        return builder;
    }

    /**
     * Call first in a compound retriever's {@code doRewrite}; {@code children} holds each child's builders,
     * in child order. A 503 (or 504) when the pool failed and no child is left to answer.
     */
    public static Outcome before(List<List<EmbedQueryVectorBuilder>> children, QueryRewriteContext ctx, String owner) {
        List<EmbedQueryVectorBuilder> pending = new ArrayList<>();
        for (List<EmbedQueryVectorBuilder> child : children) {
            for (EmbedQueryVectorBuilder builder : child) {
                if (builder.request()) {
                    pending.add(builder);
                }
            }
        }
        if (pending.isEmpty() == false) {
            ctx.registerAsyncAction((client, listener) -> embedAll(pending, listener));
            return new Outcome(true, List.of());
        }
        List<Integer> dropped = new ArrayList<>();
        ElasticsearchStatusException failure = null;
        boolean warn = false;
        for (int i = 0; i < children.size(); i++) {
            for (EmbedQueryVectorBuilder builder : children.get(i)) {
                if (builder.hasFailed()) {
                    failure = builder.failure();
                    warn |= builder.warnOnce();
                    if (dropped.contains(i) == false) {
                        dropped.add(i);
                    }
                }
            }
        }
        if (dropped.isEmpty()) {
            return Outcome.NOTHING;
        }
        if (dropped.size() == children.size()) {
            throw new ElasticsearchStatusException("[" + EmbedQueryVectorBuilder.NAME + "] " + failure.getMessage()
                + "; [fallback] bm25 leaves [" + owner + "] no other retriever to answer", failure.status(), failure);
        }
        if (warn) {
            HeaderWarning.addWarning(FELL_BACK + failure.getMessage());
        }
        return new Outcome(false, List.copyOf(dropped));
    }

    /** One pool call for every pending text (the same text once); each builder gets its vector, or the failure. */
    private static void embedAll(List<EmbedQueryVectorBuilder> pending, ActionListener<?> raw) {
        EmbedServices services = pending.get(0).services();
        @SuppressWarnings("unchecked")
        ActionListener<Object> listener = ContextPreservingActionListener.wrapPreservingContext(
            (ActionListener<Object>) raw,
            services.threadContext()
        );
        Map<String, String> wanted = services.models().modelsOf(SearchTargets.current(services.threadContext()));
        Map<String, Integer> slots = new LinkedHashMap<>();
        for (EmbedQueryVectorBuilder builder : pending) {
            slots.putIfAbsent(builder.text(), slots.size());
        }
        EmbedPool pool = services.pool();
        pool.embed(
            List.copyOf(slots.keySet()),
            EmbedPool.Kind.QUERY,
            pool.queryTimeout(),
            "rrs.embedder.timeout",
            model -> IndexModels.mismatch(EmbedQueryVectorBuilder.NAME, wanted, model, pool.base()),
            ActionListener.wrap(vectors -> {
                for (EmbedQueryVectorBuilder builder : pending) {
                    builder.done(vectors.vectors()[slots.get(builder.text())]);
                }
                listener.onResponse(null);
            }, e -> {
                ElasticsearchStatusException status = e instanceof ElasticsearchStatusException known
                    ? known
                    : EmbedPool.unavailable(String.valueOf(e.getMessage()), e);
                boolean fallBack = status.status() != RestStatus.BAD_REQUEST
                    && pending.stream().allMatch(EmbedQueryVectorBuilder::fallsBack);
                for (EmbedQueryVectorBuilder builder : pending) {
                    builder.failed(status);
                }
                if (fallBack) {
                    listener.onResponse(null);
                } else if (status.status() == RestStatus.BAD_REQUEST) {
                    listener.onFailure(status);
                } else {
                    listener.onFailure(new ElasticsearchStatusException(
                        "[" + EmbedQueryVectorBuilder.NAME + "] " + status.getMessage(), status.status(), status));
                }
            })
        );
    }
}
