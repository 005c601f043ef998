package rrs.localnode;

import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.rest.RestHandler;

import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;
import java.util.function.Supplier;

import rrs.localnode.root.MainAction;
import rrs.localnode.root.TransportMainAction;

/** The plugin class for Elasticsearch 9.x: ActionPlugin's 9.x signatures. */
public final class LocalNodePlugin extends LocalNodeBase {

    @Override
    public Collection<ActionHandler> getActions() {
        return List.of(new ActionHandler(MainAction.INSTANCE, TransportMainAction.class));
    }

    @Override
    public Collection<RestHandler> getRestHandlers(
        RestHandlersServices services,
        Supplier<DiscoveryNodes> nodesInCluster,
        Predicate<NodeFeature> clusterSupportsFeature
    ) {
        return List.of(mainHandler());
    }
}
