package rrs.localnode.root;

import org.elasticsearch.Build;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.action.support.ActionFilters;
import org.elasticsearch.action.support.TransportAction;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.util.concurrent.EsExecutors;
import org.elasticsearch.injection.guice.Inject;
import org.elasticsearch.tasks.Task;
import org.elasticsearch.transport.TransportService;

/**
 * Answers {@code GET /} from this node's applied cluster state. A transport action (not just a
 * REST handler) so that, with security on, the request is authorized as
 * {@code cluster:monitor/main} like on a full distribution.
 */
public final class TransportMainAction extends TransportAction<MainRequest, MainResponse> {

    private final ClusterService clusterService;

    @Inject
    public TransportMainAction(TransportService transportService, ActionFilters actionFilters, ClusterService clusterService) {
        super(MainAction.NAME, actionFilters, transportService.getTaskManager(), EsExecutors.DIRECT_EXECUTOR_SERVICE);
        this.clusterService = clusterService;
    }

    @Override
    protected void doExecute(Task task, MainRequest request, ActionListener<MainResponse> listener) {
        ClusterState state = clusterService.state();
        listener.onResponse(
            new MainResponse(clusterService.getNodeName(), state.getClusterName().value(), state.metadata().clusterUUID(), Build.current())
        );
    }
}
