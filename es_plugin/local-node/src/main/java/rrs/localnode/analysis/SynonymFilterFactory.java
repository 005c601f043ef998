package rrs.localnode.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.synonym.SolrSynonymParser;
import org.apache.lucene.analysis.synonym.SynonymGraphFilter;
import org.apache.lucene.analysis.synonym.SynonymMap;
import org.apache.lucene.analysis.synonym.WordnetSynonymParser;
import org.apache.lucene.util.CharsRef;
import org.apache.lucene.util.CharsRefBuilder;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexService;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.AnalysisMode;
import org.elasticsearch.index.analysis.CharFilterFactory;
import org.elasticsearch.index.analysis.CustomAnalyzer;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;

import java.io.IOException;
import java.io.Reader;
import java.io.StringReader;
import java.util.List;
import java.util.function.Function;

/**
 * The {@code synonym} and {@code synonym_graph} token filters. Rules come from {@code synonyms} (a
 * list) or {@code synonyms_path} (a file under the node's config directory), in Solr format or,
 * with {@code format: wordnet}, WordNet's; {@code expand} (true), {@code lenient} (false: a rule
 * the chain cannot analyze is an error; true: it is skipped) and {@code updateable} (false; true
 * makes the filter search-time only). The rules are analyzed with the tokenizer, char filters and
 * token filters that come before this filter in the analyzer, as Elasticsearch does. The synonyms
 * API ({@code synonyms_set}) is not on the local node.
 */
final class SynonymFilterFactory implements TokenFilterFactory {

    private final String name;
    private final Environment environment;
    private final Settings settings;
    private final boolean graph;
    private final boolean expand;
    private final boolean lenient;
    private final boolean wordnet;
    private final AnalysisMode analysisMode;

    SynonymFilterFactory(Environment environment, String name, Settings settings, boolean graph) {
        this.name = name;
        this.environment = environment;
        this.settings = settings;
        this.graph = graph;
        if (settings.get("synonyms_set") != null) {
            throw new IllegalArgumentException(
                "[synonyms_set] (the synonyms API) is not available on the local node: give the rules in [synonyms] or [synonyms_path]"
            );
        }
        if (settings.getAsList("synonyms", null) == null && settings.get("synonyms_path") == null) {
            throw new IllegalArgumentException("synonym requires either `synonyms`, `synonyms_set` or `synonyms_path` to be configured");
        }
        this.expand = settings.getAsBoolean("expand", true);
        this.lenient = settings.getAsBoolean("lenient", false);
        this.wordnet = "wordnet".equalsIgnoreCase(settings.get("format", ""));
        this.analysisMode = settings.getAsBoolean("updateable", false) ? AnalysisMode.SEARCH_TIME : AnalysisMode.ALL;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        throw new IllegalStateException("Call getChainAwareTokenFilterFactory to specialize this factory for an analysis chain first");
    }

    @Override
    public AnalysisMode getAnalysisMode() {
        return analysisMode;
    }

    @Override
    public TokenFilterFactory getChainAwareTokenFilterFactory(
        IndexService.IndexCreationContext context,
        TokenizerFactory tokenizer,
        List<CharFilterFactory> charFilters,
        List<TokenFilterFactory> previousTokenFilters,
        Function<String, TokenFilterFactory> allFilters
    ) {
        Analyzer analyzer = new CustomAnalyzer(
            tokenizer,
            charFilters.toArray(new CharFilterFactory[0]),
            previousTokenFilters.stream().map(TokenFilterFactory::getSynonymFilter).toArray(TokenFilterFactory[]::new)
        );
        SynonymMap synonyms = build(analyzer);
        boolean graphFilter = graph;
        String filterName = name;
        AnalysisMode mode = analysisMode;
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return filterName;
            }

            @Override
            @SuppressWarnings("deprecation") // SynonymFilter: what the `synonym` type is, as in Elasticsearch
            public TokenStream create(TokenStream in) {
                if (synonyms.fst == null) {
                    return in; // no rules
                }
                return graphFilter
                    ? new SynonymGraphFilter(in, synonyms, false)
                    : new org.apache.lucene.analysis.synonym.SynonymFilter(in, synonyms, false);
            }

            @Override
            public TokenFilterFactory getSynonymFilter() {
                return IDENTITY_FILTER; // synonym rules are not rewritten by other synonym filters
            }

            @Override
            public AnalysisMode getAnalysisMode() {
                return mode;
            }
        };
    }

    private SynonymMap build(Analyzer analyzer) {
        try (Reader rules = rules()) {
            SynonymMap.Builder parser;
            if (wordnet) {
                LenientWordnet wordnetParser = new LenientWordnet(expand, lenient, analyzer);
                wordnetParser.parse(rules);
                parser = wordnetParser;
            } else {
                LenientSolr solrParser = new LenientSolr(expand, lenient, analyzer);
                solrParser.parse(rules);
                parser = solrParser;
            }
            return parser.build();
        } catch (Exception e) {
            throw new IllegalArgumentException("failed to build synonyms from " + describe(), e);
        }
    }

    private String describe() {
        return settings.getAsList("synonyms", null) != null ? "'" + name + "' analyzer settings" : settings.get("synonyms_path");
    }

    private Reader rules() {
        if (settings.getAsList("synonyms", null) != null) {
            StringBuilder text = new StringBuilder();
            for (String line : Analysis.getWordList(environment, settings, "synonyms")) {
                text.append(line).append('\n');
            }
            return new StringReader(text.toString());
        }
        return Analysis.getReaderFromFile(environment, settings.get("synonyms_path"), "synonyms_path");
    }

    /** With {@code lenient}, a rule whose terms the analyzer rejects (or empties) is skipped instead of failing. */
    private static final class LenientSolr extends SolrSynonymParser {
        private final boolean lenient;

        LenientSolr(boolean expand, boolean lenient, Analyzer analyzer) {
            super(true, expand, analyzer);
            this.lenient = lenient;
        }

        @Override
        public void add(CharsRef input, CharsRef output, boolean includeOrig) {
            if (lenient == false || (input.length > 0 && output.length > 0)) {
                super.add(input, output, includeOrig);
            }
        }

        @Override
        public CharsRef analyze(String text, CharsRefBuilder reuse) throws IOException {
            try {
                return super.analyze(text, reuse);
            } catch (IllegalArgumentException e) {
                if (lenient) {
                    return new CharsRef("");
                }
                throw e;
            }
        }
    }

    private static final class LenientWordnet extends WordnetSynonymParser {
        private final boolean lenient;

        LenientWordnet(boolean expand, boolean lenient, Analyzer analyzer) {
            super(true, expand, analyzer);
            this.lenient = lenient;
        }

        @Override
        public void add(CharsRef input, CharsRef output, boolean includeOrig) {
            if (lenient == false || (input.length > 0 && output.length > 0)) {
                super.add(input, output, includeOrig);
            }
        }

        @Override
        public CharsRef analyze(String text, CharsRefBuilder reuse) throws IOException {
            try {
                return super.analyze(text, reuse);
            } catch (IllegalArgumentException e) {
                if (lenient) {
                    return new CharsRef("");
                }
                throw e;
            }
        }
    }
}
