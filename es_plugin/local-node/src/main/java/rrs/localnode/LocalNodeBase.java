package rrs.localnode;

import org.apache.lucene.analysis.Analyzer;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.CharFilterFactory;
import org.elasticsearch.index.analysis.PreConfiguredTokenFilter;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;

import java.util.List;
import java.util.Map;

import rrs.localnode.analysis.Analyzers;
import rrs.localnode.analysis.CharFilters;
import rrs.localnode.analysis.Tokenizers;
import rrs.localnode.analysis.TokenFilters;
import rrs.localnode.root.RestMainAction;

/**
 * What the integ-test-zip node lacks and clients rely on: analysis-common's analysis names and
 * rest-root's {@code GET /}. The analysis part is the same on 8.x and 9.x; {@code LocalNodePlugin}
 * (one per major, in src/es&lt;major&gt;/java) adds the ActionPlugin methods, whose signatures differ.
 *
 * <p>Only for the local node: on a full distribution each of these names or routes already
 * exists, and a node refuses to start with one registered twice.
 */
public abstract class LocalNodeBase extends Plugin implements AnalysisPlugin, ActionPlugin {

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        return TokenFilters.all();
    }

    @Override
    public List<PreConfiguredTokenFilter> getPreConfiguredTokenFilters() {
        return TokenFilters.preConfigured();
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        return Tokenizers.all();
    }

    @Override
    public Map<String, AnalysisProvider<CharFilterFactory>> getCharFilters() {
        return CharFilters.all();
    }

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        return Analyzers.all();
    }

    /** The {@code GET /} and {@code HEAD /} handler, for both majors' getRestHandlers. */
    protected static RestMainAction mainHandler() {
        return new RestMainAction();
    }
}
