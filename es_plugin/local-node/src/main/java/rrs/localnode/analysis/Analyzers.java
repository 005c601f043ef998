package rrs.localnode.analysis;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.StopFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.apache.lucene.analysis.ar.ArabicAnalyzer;
import org.apache.lucene.analysis.bg.BulgarianAnalyzer;
import org.apache.lucene.analysis.bn.BengaliAnalyzer;
import org.apache.lucene.analysis.br.BrazilianAnalyzer;
import org.apache.lucene.analysis.ca.CatalanAnalyzer;
import org.apache.lucene.analysis.cjk.CJKAnalyzer;
import org.apache.lucene.analysis.ckb.SoraniAnalyzer;
import org.apache.lucene.analysis.core.KeywordAnalyzer;
import org.apache.lucene.analysis.core.SimpleAnalyzer;
import org.apache.lucene.analysis.core.StopAnalyzer;
import org.apache.lucene.analysis.core.WhitespaceAnalyzer;
import org.apache.lucene.analysis.cz.CzechAnalyzer;
import org.apache.lucene.analysis.da.DanishAnalyzer;
import org.apache.lucene.analysis.de.GermanAnalyzer;
import org.apache.lucene.analysis.el.GreekAnalyzer;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.es.SpanishAnalyzer;
import org.apache.lucene.analysis.et.EstonianAnalyzer;
import org.apache.lucene.analysis.eu.BasqueAnalyzer;
import org.apache.lucene.analysis.fa.PersianAnalyzer;
import org.apache.lucene.analysis.fi.FinnishAnalyzer;
import org.apache.lucene.analysis.fr.FrenchAnalyzer;
import org.apache.lucene.analysis.ga.IrishAnalyzer;
import org.apache.lucene.analysis.gl.GalicianAnalyzer;
import org.apache.lucene.analysis.hi.HindiAnalyzer;
import org.apache.lucene.analysis.hu.HungarianAnalyzer;
import org.apache.lucene.analysis.hy.ArmenianAnalyzer;
import org.apache.lucene.analysis.id.IndonesianAnalyzer;
import org.apache.lucene.analysis.it.ItalianAnalyzer;
import org.apache.lucene.analysis.lt.LithuanianAnalyzer;
import org.apache.lucene.analysis.lv.LatvianAnalyzer;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.miscellaneous.EmptyTokenStream;
import org.apache.lucene.analysis.miscellaneous.FingerprintFilter;
import org.apache.lucene.analysis.nl.DutchAnalyzer;
import org.apache.lucene.analysis.no.NorwegianAnalyzer;
import org.apache.lucene.analysis.pattern.PatternTokenizer;
import org.apache.lucene.analysis.pt.PortugueseAnalyzer;
import org.apache.lucene.analysis.ro.RomanianAnalyzer;
import org.apache.lucene.analysis.ru.RussianAnalyzer;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.apache.lucene.analysis.standard.StandardTokenizer;
import org.apache.lucene.analysis.sv.SwedishAnalyzer;
import org.apache.lucene.analysis.th.ThaiAnalyzer;
import org.apache.lucene.analysis.tr.TurkishAnalyzer;
import org.apache.lucene.analysis.tr.TurkishLowerCaseFilter;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.AnalyzerScope;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;

import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.regex.Pattern;

/**
 * analysis-common's analyzer types: {@code simple}, {@code whitespace}, {@code stop},
 * {@code keyword}, {@code pattern}, {@code snowball}, {@code fingerprint} and the language
 * analyzers (Lucene's, with {@code stopwords}/{@code stopwords_path} and, where the analyzer
 * has a stemmer, {@code stem_exclusion}). Not {@code english}: our other plugin
 * (rrsearch, es_plugin/) registers it on the local node, and a name registered twice stops the node.
 */
public final class Analyzers {

    private Analyzers() {}

    /** Name -> provider, for {@link org.elasticsearch.plugins.AnalysisPlugin#getAnalyzers()}. */
    public static Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> all() {
        Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> analyzers = new TreeMap<>();
        analyzers.put("fingerprint", (index, env, name, settings) -> provider(name, fingerprint(env, settings)));
        analyzers.put("keyword", (index, env, name, settings) -> provider(name, new KeywordAnalyzer()));
        analyzers.put("pattern", (index, env, name, settings) -> provider(name, pattern(env, settings)));
        analyzers.put("simple", (index, env, name, settings) -> provider(name, new SimpleAnalyzer()));
        analyzers.put("snowball", (index, env, name, settings) -> provider(name, snowball(env, settings)));
        analyzers.put("stop", (index, env, name, settings) -> provider(
            name, new StopAnalyzer(Analysis.parseStopWords(env, settings, EnglishAnalyzer.ENGLISH_STOP_WORDS_SET))
        ));
        analyzers.put("whitespace", (index, env, name, settings) -> provider(name, new WhitespaceAnalyzer()));

        language(analyzers, "arabic", ArabicAnalyzer::getDefaultStopSet, ArabicAnalyzer::new);
        language(analyzers, "armenian", ArmenianAnalyzer::getDefaultStopSet, ArmenianAnalyzer::new);
        language(analyzers, "basque", BasqueAnalyzer::getDefaultStopSet, BasqueAnalyzer::new);
        language(analyzers, "bengali", BengaliAnalyzer::getDefaultStopSet, BengaliAnalyzer::new);
        language(analyzers, "brazilian", BrazilianAnalyzer::getDefaultStopSet, BrazilianAnalyzer::new);
        language(analyzers, "bulgarian", BulgarianAnalyzer::getDefaultStopSet, BulgarianAnalyzer::new);
        language(analyzers, "catalan", CatalanAnalyzer::getDefaultStopSet, CatalanAnalyzer::new);
        stopOnly(analyzers, "chinese", () -> EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, StandardAnalyzer::new);
        stopOnly(analyzers, "cjk", CJKAnalyzer::getDefaultStopSet, CJKAnalyzer::new);
        language(analyzers, "czech", CzechAnalyzer::getDefaultStopSet, CzechAnalyzer::new);
        language(analyzers, "danish", DanishAnalyzer::getDefaultStopSet, DanishAnalyzer::new);
        language(analyzers, "dutch", DutchAnalyzer::getDefaultStopSet, DutchAnalyzer::new);
        language(analyzers, "estonian", EstonianAnalyzer::getDefaultStopSet, EstonianAnalyzer::new);
        language(analyzers, "finnish", FinnishAnalyzer::getDefaultStopSet, FinnishAnalyzer::new);
        language(analyzers, "french", FrenchAnalyzer::getDefaultStopSet, FrenchAnalyzer::new);
        language(analyzers, "galician", GalicianAnalyzer::getDefaultStopSet, GalicianAnalyzer::new);
        language(analyzers, "german", GermanAnalyzer::getDefaultStopSet, GermanAnalyzer::new);
        stopOnly(analyzers, "greek", GreekAnalyzer::getDefaultStopSet, GreekAnalyzer::new);
        language(analyzers, "hindi", HindiAnalyzer::getDefaultStopSet, HindiAnalyzer::new);
        language(analyzers, "hungarian", HungarianAnalyzer::getDefaultStopSet, HungarianAnalyzer::new);
        language(analyzers, "indonesian", IndonesianAnalyzer::getDefaultStopSet, IndonesianAnalyzer::new);
        language(analyzers, "irish", IrishAnalyzer::getDefaultStopSet, IrishAnalyzer::new);
        language(analyzers, "italian", ItalianAnalyzer::getDefaultStopSet, ItalianAnalyzer::new);
        language(analyzers, "latvian", LatvianAnalyzer::getDefaultStopSet, LatvianAnalyzer::new);
        language(analyzers, "lithuanian", LithuanianAnalyzer::getDefaultStopSet, LithuanianAnalyzer::new);
        language(analyzers, "norwegian", NorwegianAnalyzer::getDefaultStopSet, NorwegianAnalyzer::new);
        stopOnly(analyzers, "persian", PersianAnalyzer::getDefaultStopSet, PersianAnalyzer::new);
        language(analyzers, "portuguese", PortugueseAnalyzer::getDefaultStopSet, PortugueseAnalyzer::new);
        language(analyzers, "romanian", RomanianAnalyzer::getDefaultStopSet, RomanianAnalyzer::new);
        language(analyzers, "russian", RussianAnalyzer::getDefaultStopSet, RussianAnalyzer::new);
        language(analyzers, "sorani", SoraniAnalyzer::getDefaultStopSet, SoraniAnalyzer::new);
        language(analyzers, "spanish", SpanishAnalyzer::getDefaultStopSet, SpanishAnalyzer::new);
        language(analyzers, "swedish", SwedishAnalyzer::getDefaultStopSet, SwedishAnalyzer::new);
        stopOnly(analyzers, "thai", ThaiAnalyzer::getDefaultStopSet, ThaiAnalyzer::new);
        language(analyzers, "turkish", TurkishAnalyzer::getDefaultStopSet, TurkishAnalyzer::new);
        return analyzers;
    }

    private static <T extends Analyzer> AnalyzerProvider<T> provider(String name, T analyzer) {
        return new AnalyzerProvider<>() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public AnalyzerScope scope() {
                return AnalyzerScope.INDEX;
            }

            @Override
            public T get() {
                return analyzer;
            }
        };
    }

    /** A language analyzer taking {@code stopwords} and {@code stem_exclusion}. */
    private static void language(
        Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> analyzers,
        String type,
        Supplier<CharArraySet> defaultStopWords,
        BiFunction<CharArraySet, CharArraySet, Analyzer> create
    ) {
        analyzers.put(type, (index, env, name, settings) -> provider(name, create.apply(
            Analysis.parseStopWords(env, settings, defaultStopWords.get()),
            Analysis.parseStemExclusion(settings, CharArraySet.EMPTY_SET)
        )));
    }

    /** A language analyzer taking {@code stopwords} only. */
    private static void stopOnly(
        Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> analyzers,
        String type,
        Supplier<CharArraySet> defaultStopWords,
        Function<CharArraySet, Analyzer> create
    ) {
        analyzers.put(type, (index, env, name, settings) -> provider(name, create.apply(
            Analysis.parseStopWords(env, settings, defaultStopWords.get())
        )));
    }

    /** fingerprint: standard tokenizer, lowercase, ASCII folding, stop words ({@code stopwords}, none by default), then one sorted, de-duplicated token. */
    private static Analyzer fingerprint(Environment env, Settings settings) {
        String separator = settings.get("separator", " ");
        if (separator.length() != 1) {
            throw new IllegalArgumentException("Setting [separator] must be a single, non-null character. [" + separator + "] was provided.");
        }
        char sep = separator.charAt(0);
        int maxOutputSize = settings.getAsInt("max_output_size", 255);
        CharArraySet stopWords = Analysis.parseStopWords(env, settings, CharArraySet.EMPTY_SET);
        return new Analyzer() {
            @Override
            protected TokenStreamComponents createComponents(String field) {
                Tokenizer tokenizer = new StandardTokenizer();
                TokenStream stream = new LowerCaseFilter(tokenizer);
                stream = new ASCIIFoldingFilter(stream, false);
                stream = new StopFilter(stream, stopWords);
                return new TokenStreamComponents(tokenizer, new FingerprintFilter(stream, maxOutputSize, sep));
            }
        };
    }

    /** pattern: split on {@code pattern} (\W+) with {@code flags}, {@code lowercase} (true), {@code stopwords} (none by default). */
    private static Analyzer pattern(Environment env, Settings settings) {
        Pattern pattern = Regex.compile(settings.get("pattern", "\\W+"), settings.get("flags"));
        boolean lowercase = settings.getAsBoolean("lowercase", true);
        CharArraySet stopWords = Analysis.parseStopWords(env, settings, CharArraySet.EMPTY_SET);
        return new Analyzer() {
            @Override
            protected TokenStreamComponents createComponents(String field) {
                Tokenizer tokenizer = new PatternTokenizer(pattern, -1);
                TokenStream stream = lowercase ? new LowerCaseFilter(tokenizer) : tokenizer;
                return new TokenStreamComponents(tokenizer, new StopFilter(stream, stopWords));
            }

            @Override
            protected TokenStream normalize(String field, TokenStream in) {
                return lowercase ? new LowerCaseFilter(in) : in;
            }
        };
    }

    /**
     * snowball: standard tokenizer, the English possessive filter for English, lowercase (Turkish's
     * for Turkish), stop words ({@code stopwords}; English, German and Dutch default to their
     * lists, other languages to none), then the {@code language} snowball stemmer (English).
     */
    private static Analyzer snowball(Environment env, Settings settings) {
        String language = settings.get("language", "English");
        String stemmer = language.isEmpty() ? language : Character.toUpperCase(language.charAt(0)) + language.substring(1);
        CharArraySet defaults = switch (stemmer) {
            case "English" -> EnglishAnalyzer.ENGLISH_STOP_WORDS_SET;
            case "German" -> GermanAnalyzer.getDefaultStopSet();
            case "Dutch" -> DutchAnalyzer.getDefaultStopSet();
            default -> CharArraySet.EMPTY_SET;
        };
        CharArraySet stopWords = Analysis.parseStopWords(env, settings, defaults);
        try {
            new SnowballFilter(new EmptyTokenStream(), stemmer).close(); // an unknown language fails here, at index creation
        } catch (Exception e) {
            throw new IllegalArgumentException("Unknown snowball language [" + language + "]", e);
        }
        return new Analyzer() {
            @Override
            protected TokenStreamComponents createComponents(String field) {
                Tokenizer tokenizer = new StandardTokenizer();
                TokenStream stream = stemmer.equals("English") ? new EnglishPossessiveFilter(tokenizer) : tokenizer;
                stream = stemmer.equals("Turkish") ? new TurkishLowerCaseFilter(stream) : new LowerCaseFilter(stream);
                stream = new StopFilter(stream, stopWords);
                return new TokenStreamComponents(tokenizer, new SnowballFilter(stream, stemmer));
            }
        };
    }
}
