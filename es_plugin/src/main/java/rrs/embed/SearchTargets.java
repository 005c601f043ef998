package rrs.embed;

import org.apache.lucene.util.SetOnce;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.ActionRequest;
import org.elasticsearch.action.ActionResponse;
import org.elasticsearch.action.search.SearchRequest;
import org.elasticsearch.action.search.TransportSearchAction;
import org.elasticsearch.action.support.ActionFilter;
import org.elasticsearch.action.support.ActionFilterChain;
import org.elasticsearch.common.util.concurrent.ThreadContext;
import org.elasticsearch.tasks.Task;

/**
 * Which indices the current search targets, for {@code rrs_embed}: a query vector builder is
 * handed only a client, so this filter puts the search request into the thread context (a
 * transient, local to this node and this request) where the builder finds it and reads the
 * targeted indices' {@code _meta.bi_encoder}. A search a search makes (our retrievers' inner
 * searches) keeps the outer one's. Runs after security's filter, which has by then replaced the
 * request's index expressions with the ones the caller may read.
 */
public final class SearchTargets implements ActionFilter {

    static final String KEY = "_rrs_embed_search_target";

    private final SetOnce<ThreadContext> threadContext = new SetOnce<>();

    public void setThreadContext(ThreadContext context) {
        threadContext.set(context);
    }

    /** The search request this thread works for, or null. */
    static SearchRequest current(ThreadContext context) {
        return context == null ? null : context.getTransient(KEY);
    }

    @Override
    public int order() {
        return 1000; // after security (Integer.MIN_VALUE)
    }

    @Override
    public <Request extends ActionRequest, Response extends ActionResponse> void apply(
        Task task,
        String action,
        Request request,
        ActionListener<Response> listener,
        ActionFilterChain<Request, Response> chain
    ) {
        ThreadContext context = threadContext.get();
        if (context == null || TransportSearchAction.NAME.equals(action) == false || (request instanceof SearchRequest) == false
            || context.getTransient(KEY) != null) {
            chain.proceed(task, action, request, listener);
            return;
        }
        // a stored context: the next search on this thread (an _msearch's next item) starts without it;
        // response headers (warnings) added meanwhile are kept
        try (ThreadContext.StoredContext ignored = context.newStoredContextPreservingResponseHeaders()) {
            context.putTransient(KEY, request);
            chain.proceed(task, action, request, listener);
        }
    }
}
