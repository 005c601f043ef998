package rrs.embed;

import org.elasticsearch.ElasticsearchStatusException;
import org.elasticsearch.action.IndicesRequest;
import org.elasticsearch.action.support.IndicesOptions;
import org.elasticsearch.cluster.ClusterState;
import org.elasticsearch.cluster.metadata.IndexAbstraction;
import org.elasticsearch.cluster.metadata.IndexMetadata;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.metadata.MappingMetadata;
import org.elasticsearch.cluster.metadata.ProjectMetadata;
import org.elasticsearch.cluster.project.ProjectResolver;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.index.Index;
import org.elasticsearch.rest.RestStatus;

import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Which bi-encoder built an index: {@code _meta.bi_encoder}, what {@code rrs index create} and
 * {@code rrs ingest} write into the passage mapping (core/mappings.py). Read from the node's
 * cluster state (no privilege asked of the caller), cached per index and mapping version.
 */
public final class IndexModels {

    static final String META_KEY = "bi_encoder";

    private record Known(String uuid, long mappingVersion, String model) {}

    private final ClusterService clusterService;
    private final IndexNameExpressionResolver resolver;
    private final ProjectResolver projects;
    private final Map<String, Known> cache = new ConcurrentHashMap<>();

    public IndexModels(ClusterService clusterService, IndexNameExpressionResolver resolver, ProjectResolver projects) {
        this.clusterService = clusterService;
        this.resolver = resolver;
        this.projects = projects;
    }

    /**
     * The model index {@code name} (or the write index of alias {@code name}) was built with, or null
     * (no such index, or no {@code _meta.bi_encoder}).
     */
    String modelOf(String name) {
        if (name == null) {
            return null;
        }
        ProjectMetadata project = projects.getProjectMetadata(clusterService.state());
        IndexMetadata index = project.index(name);
        if (index == null) {
            IndexAbstraction alias = project.getIndicesLookup().get(name);
            Index write = alias == null ? null : alias.getWriteIndex();
            index = write == null ? null : project.index(write);
        }
        return index == null ? null : modelOf(index);
    }

    private String modelOf(IndexMetadata index) {
        Known known = cache.get(index.getIndex().getName());
        if (known != null && known.uuid().equals(index.getIndexUUID()) && known.mappingVersion() == index.getMappingVersion()) {
            return known.model();
        }
        String model = readModel(index.mapping());
        cache.put(index.getIndex().getName(), new Known(index.getIndexUUID(), index.getMappingVersion(), model));
        return model;
    }

    @SuppressWarnings("unchecked")
    static String readModel(MappingMetadata mapping) {
        if (mapping == null) {
            return null;
        }
        Map<String, Object> source = mapping.sourceAsMap();
        if (source.size() == 1 && source.get("_doc") instanceof Map<?, ?> typed) {
            source = (Map<String, Object>) typed;
        }
        return source.get("_meta") instanceof Map<?, ?> meta && meta.get(META_KEY) instanceof String model && model.isEmpty() == false
            ? model
            : null;
    }

    /**
     * The model of each local index a search targets that records one (index name to model,
     * sorted); empty for a search through a point in time or one the node cannot resolve.
     */
    Map<String, String> modelsOf(IndicesRequest search) {
        Map<String, String> models = new TreeMap<>();
        if (search == null) {
            return models;
        }
        String[] local = Arrays.stream(search.indices() == null ? new String[0] : search.indices())
            .filter(name -> name.indexOf(':') < 0) // a remote cluster's index: not ours to read
            .toArray(String[]::new);
        if (local.length == 0 && search.indices() != null && search.indices().length > 0) {
            return models;
        }
        ClusterState state = clusterService.state();
        ProjectMetadata project = projects.getProjectMetadata(state);
        String[] names;
        try {
            names = resolver.concreteIndexNames(project, IndicesOptions.lenientExpandOpen(), local);
        } catch (RuntimeException e) {
            return models; // the search itself says what is wrong with its indices
        }
        for (String name : names) {
            IndexMetadata index = project.index(name);
            String model = index == null ? null : modelOf(index);
            if (model != null) {
                models.put(name, model);
            }
        }
        return models;
    }

    /**
     * A 400 that says which index wants which model, when the pool's {@code model} is not the one every
     * targeted index was built with; null when they agree.
     */
    static ElasticsearchStatusException mismatch(String owner, Map<String, String> wanted, String model, String pool) {
        for (Map.Entry<String, String> entry : wanted.entrySet()) {
            if (entry.getValue().equals(model) == false) {
                return new ElasticsearchStatusException(
                    "[" + owner + "] model mismatch: index [" + entry.getKey() + "] was built with bi-encoder [" + entry.getValue()
                        + "] (its _meta.bi_encoder), but the embedding pool at " + pool + " serves [" + model + "]: point "
                        + "rrs.embedder.url at a pool that serves [" + entry.getValue() + "] (RRS_BI_ENCODER), or reindex with ["
                        + model + "]",
                    RestStatus.BAD_REQUEST
                );
            }
        }
        return null;
    }
}
