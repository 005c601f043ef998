package rrs.localnode.root;

import org.elasticsearch.action.ActionType;

/** rest-root's action name: a role or API key needs the {@code monitor} cluster privilege for it, as on a real node. */
public final class MainAction {

    public static final String NAME = "cluster:monitor/main";
    public static final ActionType<MainResponse> INSTANCE = new ActionType<>(NAME);

    private MainAction() {}
}
