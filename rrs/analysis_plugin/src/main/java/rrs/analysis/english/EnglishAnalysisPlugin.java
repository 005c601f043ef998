package rrs.analysis.english;

import java.util.Map;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

/**
 * Registers the {@code english} analyzer type, so a mapping's {@code "analyzer": "english"}
 * and {@code _analyze} with {@code "analyzer": "english"} work on a node that lacks the
 * analysis-common module, and index settings may define
 * {@code {"type": "english", "stopwords": ..., "stem_exclusion": ...}} analyzers.
 */
public final class EnglishAnalysisPlugin extends Plugin implements AnalysisPlugin {

    /** The analyzer's name, the same as on production nodes. */
    public static final String ANALYZER_NAME = "english";

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return Map.of(ANALYZER_NAME, EnglishAnalyzerProvider::new);
    }
}
