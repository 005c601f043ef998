package rrs;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.util.SetOnce;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.Setting;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.action.support.ActionFilter;
import org.elasticsearch.ingest.Processor;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.IngestPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.SearchPlugin;
import org.elasticsearch.search.vectors.QueryVectorBuilder;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;

import rrs.analysis.english.EnglishAnalyzerProvider;
import rrs.embed.EmbedPool;
import rrs.embed.EmbedProcessor;
import rrs.embed.EmbedQueryVectorBuilder;
import rrs.embed.EmbedServices;
import rrs.embed.IndexModels;
import rrs.embed.SearchTargets;
import rrs.search.LinearRetrieverBuilder;
import rrs.search.RerankPool;
import rrs.search.RerankRetrieverBuilder;
import rrs.search.RrfRetrieverBuilder;
import rrs.search.Search;

/**
 * Our one Elasticsearch plugin, rrsearch: the {@code english} analyzer for nodes without
 * analysis-common; the {@code rrs_rrf}, {@code rrs_linear} and {@code rrs_rerank} retrievers that
 * give plain {@code _search} requests the service's fusion and reranking; and {@code rrs_embed}, a
 * query vector builder and an ingest processor that embed text with the node's pool, so that a
 * client sends text alone to {@code _search} and {@code _bulk}.
 */
public final class RrsPlugin extends Plugin implements AnalysisPlugin, SearchPlugin, IngestPlugin, ActionPlugin {

    /** The analyzer's name, the same as on production nodes. */
    public static final String ANALYZER_NAME = "english";

    private final SetOnce<RerankPool> pool = new SetOnce<>();
    private final SetOnce<EmbedServices> embed = new SetOnce<>();
    private final SearchTargets searchTargets = new SearchTargets();

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return Map.of(ANALYZER_NAME, EnglishAnalyzerProvider::new);
    }

    @Override
    public List<RetrieverSpec<?>> getRetrievers() {
        return List.of(
            new RetrieverSpec<>(RrfRetrieverBuilder.NAME, RrfRetrieverBuilder::fromXContent),
            new RetrieverSpec<>(LinearRetrieverBuilder.NAME, LinearRetrieverBuilder::fromXContent),
            new RetrieverSpec<>(RerankRetrieverBuilder.NAME, (parser, context) -> RerankRetrieverBuilder.fromXContent(parser, context, pool::get))
        );
    }

    @Override
    public List<QueryVectorBuilderSpec<?>> getQueryVectorBuilders() {
        return List.of(new QueryVectorBuilderSpec<>(EmbedQueryVectorBuilder.NAME, EmbedQueryVectorBuilder.reader(embed::get),
            EmbedQueryVectorBuilder.fromXContent(embed::get)));
    }

    @Override
    public Map<String, Processor.Factory> getProcessors(Processor.Parameters parameters) {
        return Map.of(EmbedProcessor.TYPE, new EmbedProcessor.Factory(embed::get, parameters));
    }

    @Override
    public Collection<ActionFilter> getActionFilters() {
        return List.of(searchTargets);
    }

    @Override
    public List<NamedWriteableRegistry.Entry> getNamedWriteables() {
        return List.of(Search.rankBuilderEntry());
    }

    @Override
    public List<Setting<?>> getSettings() {
        List<Setting<?>> settings = new ArrayList<>(List.of(RerankPool.URL, RerankPool.TIMEOUT, RerankPool.API_KEY));
        settings.addAll(EmbedPool.settings());
        return settings;
    }

    @Override
    public Collection<?> createComponents(PluginServices services) {
        var settings = services.environment().settings();
        var clusterSettings = services.clusterService().getClusterSettings();
        var threadContext = services.threadPool().getThreadContext();
        RerankPool reranker = new RerankPool(settings, clusterSettings, threadContext);
        pool.set(reranker);
        EmbedPool embedder = new EmbedPool(settings, clusterSettings, threadContext, reranker::url, reranker::apiKey);
        IndexModels models = new IndexModels(services.clusterService(), services.indexNameExpressionResolver(),
            services.projectResolver());
        embed.set(new EmbedServices(embedder, models, threadContext));
        searchTargets.setThreadContext(threadContext);
        return List.of();
    }

    @Override
    public void close() throws IOException {
        if (pool.get() != null) {
            pool.get().close();
        }
        if (embed.get() != null) {
            embed.get().pool().close();
        }
    }
}
