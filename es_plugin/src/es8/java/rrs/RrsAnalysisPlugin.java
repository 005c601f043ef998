package rrs;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

import java.util.Map;

import rrs.analysis.english.EnglishAnalyzerProvider;

/**
 * Our plugin as built for Elasticsearch 8.x (Maven profile {@code es8}): the {@code english}
 * analyzer only. The {@code rrs_rrf}, {@code rrs_linear} and {@code rrs_rerank} retrievers
 * ({@code src/main/java/rrs/search}) are written against 9.x server APIs and are not in this
 * build: on an 8.x node the service's default retrieval path ({@code msearch}) is the one that works.
 */
public final class RrsAnalysisPlugin extends Plugin implements AnalysisPlugin {

    /** The analyzer's name, the same as on production nodes. */
    public static final String ANALYZER_NAME = "english";

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return Map.of(ANALYZER_NAME, EnglishAnalyzerProvider::new);
    }
}
