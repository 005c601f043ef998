package rrs;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.util.SetOnce;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.Setting;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.SearchPlugin;
import org.elasticsearch.search.rank.RankBuilder;

import java.io.IOException;
import java.util.Collection;
import java.util.List;
import java.util.Map;

import rrs.analysis.english.EnglishAnalyzerProvider;
import rrs.search.LinearRetrieverBuilder;
import rrs.search.RerankPool;
import rrs.search.RerankRetrieverBuilder;
import rrs.search.RrfRetrieverBuilder;
import rrs.search.Search;

/**
 * Our one Elasticsearch plugin: the {@code english} analyzer for nodes without analysis-common,
 * and the {@code rrs_rrf}, {@code rrs_linear} and {@code rrs_rerank} retrievers that give plain
 * {@code _search} requests the service's fusion and reranking.
 */
public final class RrsPlugin extends Plugin implements AnalysisPlugin, SearchPlugin {

    /** The analyzer's name, the same as on production nodes. */
    public static final String ANALYZER_NAME = "english";

    private final SetOnce<RerankPool> pool = new SetOnce<>();

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
    public List<NamedWriteableRegistry.Entry> getNamedWriteables() {
        return List.of(Search.rankBuilderEntry());
    }

    @Override
    public List<Setting<?>> getSettings() {
        return List.of(RerankPool.URL, RerankPool.TIMEOUT, RerankPool.API_KEY);
    }

    @Override
    public Collection<?> createComponents(PluginServices services) {
        pool.set(new RerankPool(services.environment().settings(), services.clusterService().getClusterSettings(),
            services.threadPool().getThreadContext()));
        return List.of();
    }

    @Override
    public void close() throws IOException {
        if (pool.get() != null) {
            pool.get().close();
        }
    }
}
