package rrs.localnode.root;

import org.elasticsearch.action.ActionRequest;
import org.elasticsearch.action.ActionRequestValidationException;

/** The (empty) request of {@code GET /}: executed on the node that received it, never sent. */
public final class MainRequest extends ActionRequest {

    @Override
    public ActionRequestValidationException validate() {
        return null;
    }
}
