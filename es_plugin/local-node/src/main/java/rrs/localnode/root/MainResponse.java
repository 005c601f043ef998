package rrs.localnode.root;

import org.apache.lucene.util.Version;
import org.elasticsearch.Build;
import org.elasticsearch.action.ActionResponse;
import org.elasticsearch.action.support.TransportAction;
import org.elasticsearch.common.io.stream.StreamOutput;
import org.elasticsearch.xcontent.ToXContent;
import org.elasticsearch.xcontent.ToXContentObject;
import org.elasticsearch.xcontent.XContentBuilder;

import java.io.IOException;

/**
 * What {@code GET /} answers on a full distribution: node and cluster names, the cluster UUID,
 * the build (version, flavor, type, hash, date, snapshot, Lucene version, the oldest wire and
 * index versions it talks to) and the tagline, field by field as rest-root writes them.
 */
public final class MainResponse extends ActionResponse implements ToXContentObject {

    private final String nodeName;
    private final String clusterName;
    private final String clusterUuid;
    private final Build build;

    public MainResponse(String nodeName, String clusterName, String clusterUuid, Build build) {
        this.nodeName = nodeName;
        this.clusterName = clusterName;
        this.clusterUuid = clusterUuid;
        this.build = build;
    }

    @Override
    public void writeTo(StreamOutput out) throws IOException {
        TransportAction.localOnly(); // answered on the receiving node, never serialized
    }

    @Override
    public XContentBuilder toXContent(XContentBuilder builder, ToXContent.Params params) throws IOException {
        builder.startObject();
        builder.field("name", nodeName);
        builder.field("cluster_name", clusterName);
        builder.field("cluster_uuid", clusterUuid);
        builder.startObject("version")
            .field("number", build.qualifiedVersion())
            .field("build_flavor", build.flavor())
            .field("build_type", build.type().displayName())
            .field("build_hash", build.hash())
            .field("build_date", build.date())
            .field("build_snapshot", build.isSnapshot())
            .field("lucene_version", Version.LATEST.toString())
            .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
            .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
            .endObject();
        builder.field("tagline", "You Know, for Search");
        builder.endObject();
        return builder;
    }
}
