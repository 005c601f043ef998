package rrs.localnode.analysis;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.LowerCaseFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.ar.ArabicNormalizationFilter;
import org.apache.lucene.analysis.ar.ArabicStemFilter;
import org.apache.lucene.analysis.bn.BengaliNormalizationFilter;
import org.apache.lucene.analysis.br.BrazilianStemFilter;
import org.apache.lucene.analysis.cjk.CJKBigramFilter;
import org.apache.lucene.analysis.cjk.CJKWidthFilter;
import org.apache.lucene.analysis.ckb.SoraniNormalizationFilter;
import org.apache.lucene.analysis.classic.ClassicFilter;
import org.apache.lucene.analysis.commongrams.CommonGramsFilter;
import org.apache.lucene.analysis.commongrams.CommonGramsQueryFilter;
import org.apache.lucene.analysis.compound.DictionaryCompoundWordTokenFilter;
import org.apache.lucene.analysis.core.DecimalDigitFilter;
import org.apache.lucene.analysis.core.FlattenGraphFilter;
import org.apache.lucene.analysis.core.TypeTokenFilter;
import org.apache.lucene.analysis.core.UpperCaseFilter;
import org.apache.lucene.analysis.cz.CzechStemFilter;
import org.apache.lucene.analysis.de.GermanNormalizationFilter;
import org.apache.lucene.analysis.de.GermanStemFilter;
import org.apache.lucene.analysis.el.GreekLowerCaseFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.fa.PersianNormalizationFilter;
import org.apache.lucene.analysis.fa.PersianStemFilter;
import org.apache.lucene.analysis.fr.FrenchAnalyzer;
import org.apache.lucene.analysis.ga.IrishLowerCaseFilter;
import org.apache.lucene.analysis.hi.HindiNormalizationFilter;
import org.apache.lucene.analysis.in.IndicNormalizationFilter;
import org.apache.lucene.analysis.minhash.MinHashFilter;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.miscellaneous.EmptyTokenStream;
import org.apache.lucene.analysis.miscellaneous.FingerprintFilter;
import org.apache.lucene.analysis.miscellaneous.KeepWordFilter;
import org.apache.lucene.analysis.miscellaneous.LengthFilter;
import org.apache.lucene.analysis.miscellaneous.LimitTokenCountFilter;
import org.apache.lucene.analysis.miscellaneous.PatternKeywordMarkerFilter;
import org.apache.lucene.analysis.miscellaneous.RemoveDuplicatesTokenFilter;
import org.apache.lucene.analysis.miscellaneous.ScandinavianFoldingFilter;
import org.apache.lucene.analysis.miscellaneous.ScandinavianNormalizationFilter;
import org.apache.lucene.analysis.miscellaneous.SetKeywordMarkerFilter;
import org.apache.lucene.analysis.miscellaneous.StemmerOverrideFilter;
import org.apache.lucene.analysis.miscellaneous.TrimFilter;
import org.apache.lucene.analysis.miscellaneous.TruncateTokenFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterGraphFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterIterator;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenFilter;
import org.apache.lucene.analysis.ngram.NGramTokenFilter;
import org.apache.lucene.analysis.no.NorwegianNormalizationFilter;
import org.apache.lucene.analysis.pattern.PatternCaptureGroupTokenFilter;
import org.apache.lucene.analysis.pattern.PatternReplaceFilter;
import org.apache.lucene.analysis.payloads.DelimitedPayloadTokenFilter;
import org.apache.lucene.analysis.payloads.FloatEncoder;
import org.apache.lucene.analysis.payloads.IdentityEncoder;
import org.apache.lucene.analysis.payloads.IntegerEncoder;
import org.apache.lucene.analysis.payloads.PayloadEncoder;
import org.apache.lucene.analysis.reverse.ReverseStringFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.apache.lucene.analysis.sr.SerbianNormalizationFilter;
import org.apache.lucene.analysis.tr.TurkishLowerCaseFilter;
import org.apache.lucene.analysis.util.ElisionFilter;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;
import org.elasticsearch.index.analysis.PreConfiguredTokenFilter;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.tartarus.snowball.ext.DutchStemmer;
import org.tartarus.snowball.ext.FrenchStemmer;
import org.tartarus.snowball.ext.RussianStemmer;

import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;

import static org.elasticsearch.plugins.AnalysisPlugin.requiresAnalysisSettings;
import static rrs.localnode.analysis.Components.filter;
import static rrs.localnode.analysis.Components.noSynonyms;
import static rrs.localnode.analysis.Components.normalizing;

/**
 * analysis-common's token filter types, with its parameters and defaults. Not here: the server's
 * own {@code stop}, {@code shingle}, {@code hunspell}; those that need scripts ({@code condition},
 * {@code predicate_token_filter}: the node has no painless), {@code multiplexer} and
 * {@code hyphenation_decompounder}.
 */
@SuppressWarnings("deprecation") // WordDelimiterFilter: the old `word_delimiter` type is still Elasticsearch's
public final class TokenFilters {

    private TokenFilters() {}

    /** Name -> provider, for {@link org.elasticsearch.plugins.AnalysisPlugin#getTokenFilters()}. */
    public static Map<String, AnalysisProvider<TokenFilterFactory>> all() {
        Map<String, AnalysisProvider<TokenFilterFactory>> filters = new TreeMap<>();
        simple(filters, "apostrophe", org.apache.lucene.analysis.tr.ApostropheFilter::new);
        normalizer(filters, "arabic_normalization", ArabicNormalizationFilter::new);
        simple(filters, "arabic_stem", ArabicStemFilter::new);
        filters.put("asciifolding", TokenFilters::asciiFolding);
        normalizer(filters, "bengali_normalization", BengaliNormalizationFilter::new);
        simple(filters, "brazilian_stem", BrazilianStemFilter::new);
        filters.put("cjk_bigram", TokenFilters::cjkBigram);
        normalizer(filters, "cjk_width", CJKWidthFilter::new);
        simple(filters, "classic", ClassicFilter::new);
        filters.put("common_grams", requiresAnalysisSettings(TokenFilters::commonGrams));
        simple(filters, "czech_stem", CzechStemFilter::new);
        normalizer(filters, "decimal_digit", DecimalDigitFilter::new);
        filters.put("delimited_payload", TokenFilters::delimitedPayload);
        filters.put("dictionary_decompounder", requiresAnalysisSettings(TokenFilters::dictionaryDecompounder));
        simple(filters, "dutch_stem", in -> new SnowballFilter(in, new DutchStemmer()));
        filters.put("edge_ngram", TokenFilters::edgeNgram);
        filters.put("elision", requiresAnalysisSettings(TokenFilters::elision));
        filters.put("fingerprint", TokenFilters::fingerprint);
        simple(filters, "flatten_graph", FlattenGraphFilter::new);
        simple(filters, "french_stem", in -> new SnowballFilter(in, new FrenchStemmer()));
        normalizer(filters, "german_normalization", GermanNormalizationFilter::new);
        simple(filters, "german_stem", GermanStemFilter::new);
        normalizer(filters, "hindi_normalization", HindiNormalizationFilter::new);
        normalizer(filters, "indic_normalization", IndicNormalizationFilter::new);
        filters.put("keep", requiresAnalysisSettings(TokenFilters::keep));
        filters.put("keep_types", requiresAnalysisSettings(TokenFilters::keepTypes));
        filters.put("keyword_marker", requiresAnalysisSettings(TokenFilters::keywordMarker));
        simple(filters, "kstem", KStemFilter::new);
        filters.put("length", TokenFilters::length);
        filters.put("limit", TokenFilters::limit);
        filters.put("lowercase", TokenFilters::lowercase);
        filters.put("min_hash", TokenFilters::minHash);
        filters.put("ngram", TokenFilters::ngram);
        normalizer(filters, "norwegian_normalization", NorwegianNormalizationFilter::new);
        filters.put("pattern_capture", requiresAnalysisSettings(TokenFilters::patternCapture));
        filters.put("pattern_replace", requiresAnalysisSettings(TokenFilters::patternReplace));
        normalizer(filters, "persian_normalization", PersianNormalizationFilter::new);
        simple(filters, "persian_stem", PersianStemFilter::new);
        simple(filters, "porter_stem", PorterStemFilter::new);
        simple(filters, "remove_duplicates", RemoveDuplicatesTokenFilter::new);
        simple(filters, "reverse", ReverseStringFilter::new);
        simple(filters, "russian_stem", in -> new SnowballFilter(in, new RussianStemmer()));
        normalizer(filters, "scandinavian_folding", ScandinavianFoldingFilter::new);
        normalizer(filters, "scandinavian_normalization", ScandinavianNormalizationFilter::new);
        normalizer(filters, "serbian_normalization", SerbianNormalizationFilter::new);
        filters.put("snowball", TokenFilters::snowball);
        normalizer(filters, "sorani_normalization", SoraniNormalizationFilter::new);
        filters.put("stemmer", TokenFilters::stemmer);
        filters.put("stemmer_override", requiresAnalysisSettings(TokenFilters::stemmerOverride));
        filters.put("synonym", requiresAnalysisSettings((index, env, name, settings) -> new SynonymFilterFactory(env, name, settings, false)));
        filters.put("synonym_graph", requiresAnalysisSettings((index, env, name, settings) -> new SynonymFilterFactory(env, name, settings, true)));
        normalizer(filters, "trim", TrimFilter::new);
        filters.put("truncate", requiresAnalysisSettings(TokenFilters::truncate));
        filters.put("unique", (index, env, name, settings) -> {
            boolean samePosition = settings.getAsBoolean("only_on_same_position", false);
            return filter(name, in -> new UniqueTokenFilter(in, samePosition));
        });
        normalizer(filters, "uppercase", UpperCaseFilter::new);
        filters.put("word_delimiter", (index, env, name, settings) -> wordDelimiter(env, name, settings, false));
        filters.put("word_delimiter_graph", (index, env, name, settings) -> wordDelimiter(env, name, settings, true));
        return filters;
    }

    /**
     * The filters usable by name without settings whose configurable type requires settings, with
     * analysis-common's defaults: {@code elision} (French articles) and {@code truncate} (10 chars).
     */
    public static List<PreConfiguredTokenFilter> preConfigured() {
        return List.of(
            PreConfiguredTokenFilter.singleton("elision", true, in -> new ElisionFilter(in, FrenchAnalyzer.DEFAULT_ARTICLES)),
            PreConfiguredTokenFilter.singleton("truncate", false, in -> new TruncateTokenFilter(in, 10))
        );
    }

    private static void simple(Map<String, AnalysisProvider<TokenFilterFactory>> filters, String type, UnaryOperator<TokenStream> create) {
        filters.put(type, (index, env, name, settings) -> filter(name, create));
    }

    private static void normalizer(Map<String, AnalysisProvider<TokenFilterFactory>> filters, String type, UnaryOperator<TokenStream> create) {
        filters.put(type, (index, env, name, settings) -> normalizing(name, create));
    }

    private static TokenFilterFactory asciiFolding(IndexSettings index, Environment env, String name, Settings settings) {
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", false);
        return new NormalizingTokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream in) {
                return new ASCIIFoldingFilter(in, preserveOriginal);
            }

            @Override
            public TokenStream normalize(TokenStream in) {
                return new ASCIIFoldingFilter(in, false); // one term out for a keyword
            }
        };
    }

    private static TokenFilterFactory lowercase(IndexSettings index, Environment env, String name, Settings settings) {
        String language = settings.get("language");
        UnaryOperator<TokenStream> create;
        if (language == null) {
            create = LowerCaseFilter::new;
        } else {
            create = switch (language.toLowerCase(Locale.ROOT)) {
                case "greek" -> GreekLowerCaseFilter::new;
                case "irish" -> IrishLowerCaseFilter::new;
                case "turkish" -> TurkishLowerCaseFilter::new;
                default -> throw new IllegalArgumentException("language [" + language + "] not support for lower case");
            };
        }
        return normalizing(name, create);
    }

    private static TokenFilterFactory cjkBigram(IndexSettings index, Environment env, String name, Settings settings) {
        int flags = CJKBigramFilter.HAN | CJKBigramFilter.HIRAGANA | CJKBigramFilter.KATAKANA | CJKBigramFilter.HANGUL;
        for (String script : settings.getAsList("ignored_scripts", List.of())) {
            flags &= ~switch (script.toLowerCase(Locale.ROOT)) {
                case "han" -> CJKBigramFilter.HAN;
                case "hiragana" -> CJKBigramFilter.HIRAGANA;
                case "katakana" -> CJKBigramFilter.KATAKANA;
                case "hangul" -> CJKBigramFilter.HANGUL;
                default -> 0;
            };
        }
        int scripts = flags;
        boolean outputUnigrams = settings.getAsBoolean("output_unigrams", false);
        UnaryOperator<TokenStream> create = in -> new CJKBigramFilter(in, scripts, outputUnigrams);
        return outputUnigrams ? noSynonyms(name, create) : filter(name, create);
    }

    private static TokenFilterFactory commonGrams(IndexSettings index, Environment env, String name, Settings settings) {
        boolean ignoreCase = settings.getAsBoolean("ignore_case", false);
        CharArraySet words = Analysis.parseCommonWords(env, settings, null, ignoreCase);
        if (words == null) {
            throw new IllegalArgumentException("missing or empty [common_words] or [common_words_path] configuration for common_grams token filter");
        }
        boolean queryMode = settings.getAsBoolean("query_mode", false);
        return noSynonyms(name, in -> {
            CommonGramsFilter grams = new CommonGramsFilter(in, words);
            return queryMode ? new CommonGramsQueryFilter(grams) : grams;
        });
    }

    private static TokenFilterFactory delimitedPayload(IndexSettings index, Environment env, String name, Settings settings) {
        String delimiter = settings.get("delimiter", "|");
        if (delimiter.length() != 1) {
            throw new IllegalArgumentException("Setting [delimiter] must be a single, non-null character. [" + delimiter + "] was provided.");
        }
        String encoding = settings.get("encoding", "float");
        PayloadEncoder encoder = switch (encoding) {
            case "float" -> new FloatEncoder();
            case "int" -> new IntegerEncoder();
            case "identity" -> new IdentityEncoder();
            default -> throw new IllegalArgumentException("Unknown [encoding] [" + encoding + "]: one of float, int, identity");
        };
        char separator = delimiter.charAt(0);
        return filter(name, in -> new DelimitedPayloadTokenFilter(in, separator, encoder));
    }

    private static TokenFilterFactory dictionaryDecompounder(IndexSettings index, Environment env, String name, Settings settings) {
        CharArraySet words = Analysis.getWordSet(env, settings, "word_list");
        if (words == null) {
            throw new IllegalArgumentException("word_list must be provided for [" + name + "], either as a path to a file, or directly");
        }
        int minWord = settings.getAsInt("min_word_size", 5);
        int minSubword = settings.getAsInt("min_subword_size", 2);
        int maxSubword = settings.getAsInt("max_subword_size", 15);
        boolean longestOnly = settings.getAsBoolean("only_longest_match", false);
        return filter(name, in -> new DictionaryCompoundWordTokenFilter(in, words, minWord, minSubword, maxSubword, longestOnly));
    }

    private static TokenFilterFactory edgeNgram(IndexSettings index, Environment env, String name, Settings settings) {
        int minGram = settings.getAsInt("min_gram", 1);
        int maxGram = settings.getAsInt("max_gram", 2);
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", false);
        String side = settings.get("side", "front");
        boolean back = switch (side) {
            case "front" -> false;
            case "back" -> true;
            default -> throw new IllegalArgumentException("invalid side: [" + side + "], must be either 'front' or 'back'");
        };
        return noSynonyms(name, in -> {
            if (back == false) {
                return new EdgeNGramTokenFilter(in, minGram, maxGram, preserveOriginal);
            }
            TokenStream reversed = new EdgeNGramTokenFilter(new ReverseStringFilter(in), minGram, maxGram, preserveOriginal);
            return new ReverseStringFilter(reversed);
        });
    }

    private static TokenFilterFactory elision(IndexSettings index, Environment env, String name, Settings settings) {
        CharArraySet articles = Analysis.parseArticles(env, settings);
        if (articles == null) {
            throw new IllegalArgumentException("elision filter requires [articles] or [articles_path] setting");
        }
        return normalizing(name, in -> new ElisionFilter(in, articles));
    }

    private static TokenFilterFactory fingerprint(IndexSettings index, Environment env, String name, Settings settings) {
        String separator = settings.get("separator", " ");
        if (separator.length() != 1) {
            throw new IllegalArgumentException("Setting [separator] must be a single, non-null character. [" + separator + "] was provided.");
        }
        int maxOutputSize = settings.getAsInt("max_output_size", 255);
        char sep = separator.charAt(0);
        return noSynonyms(name, in -> new FingerprintFilter(in, maxOutputSize, sep));
    }

    private static TokenFilterFactory keep(IndexSettings index, Environment env, String name, Settings settings) {
        if (settings.getAsList("keep_words", null) != null && settings.get("keep_words_path") != null) {
            throw new IllegalArgumentException("keep requires either `keep_words` or `keep_words_path` to be configured, not both");
        }
        CharArraySet words = Analysis.getWordSet(env, settings, "keep_words");
        if (words == null) {
            throw new IllegalArgumentException("keep requires either `keep_words` or `keep_words_path` to be configured");
        }
        CharArraySet keepWords = settings.getAsBoolean("keep_words_case", false) ? new CharArraySet(words, true) : words;
        return filter(name, in -> new KeepWordFilter(in, keepWords));
    }

    private static TokenFilterFactory keepTypes(IndexSettings index, Environment env, String name, Settings settings) {
        List<String> types = settings.getAsList("types", null);
        if (types == null) {
            throw new IllegalArgumentException("keep_types requires `types` to be configured");
        }
        String mode = settings.get("mode", "include");
        boolean include = switch (mode) {
            case "include" -> true;
            case "exclude" -> false;
            default -> throw new IllegalArgumentException("`keep_types` tokenfilter mode can only be [include] or [exclude] but was [" + mode + "].");
        };
        var typeSet = new HashSet<>(types);
        return filter(name, in -> new TypeTokenFilter(in, typeSet, include));
    }

    private static TokenFilterFactory keywordMarker(IndexSettings index, Environment env, String name, Settings settings) {
        boolean ignoreCase = settings.getAsBoolean("ignore_case", false);
        String pattern = settings.get("keywords_pattern");
        CharArraySet keywords = Analysis.getWordSet(env, settings, "keywords");
        if (pattern != null) {
            if (keywords != null) {
                throw new IllegalArgumentException("cannot specify both `keywords_pattern` and `keywords` or `keywords_path`");
            }
            Pattern compiled = Regex.compile(pattern, null);
            return filter(name, in -> new PatternKeywordMarkerFilter(in, compiled));
        }
        if (keywords == null) {
            throw new IllegalArgumentException("keyword filter requires either `keywords`, `keywords_path`, or `keywords_pattern` to be configured");
        }
        CharArraySet marked = new CharArraySet(keywords, ignoreCase);
        return filter(name, in -> new SetKeywordMarkerFilter(in, marked));
    }

    private static TokenFilterFactory length(IndexSettings index, Environment env, String name, Settings settings) {
        int min = settings.getAsInt("min", 0);
        int max = settings.getAsInt("max", Integer.MAX_VALUE);
        return filter(name, in -> new LengthFilter(in, min, max));
    }

    private static TokenFilterFactory limit(IndexSettings index, Environment env, String name, Settings settings) {
        int maxTokens = settings.getAsInt("max_token_count", 1);
        boolean consumeAll = settings.getAsBoolean("consume_all_tokens", false);
        return filter(name, in -> new LimitTokenCountFilter(in, maxTokens, consumeAll));
    }

    private static TokenFilterFactory minHash(IndexSettings index, Environment env, String name, Settings settings) {
        int hashCount = settings.getAsInt("hash_count", 1);
        int bucketCount = settings.getAsInt("bucket_count", 512);
        int hashSetSize = settings.getAsInt("hash_set_size", 1);
        boolean withRotation = settings.getAsBoolean("with_rotation", true);
        return noSynonyms(name, in -> new MinHashFilter(in, hashCount, bucketCount, hashSetSize, withRotation));
    }

    private static TokenFilterFactory ngram(IndexSettings index, Environment env, String name, Settings settings) {
        int minGram = settings.getAsInt("min_gram", 1);
        int maxGram = settings.getAsInt("max_gram", 2);
        Components.checkNgramDiff(minGram, maxGram, index.getMaxNgramDiff(), "NGram Tokenizer");
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", false);
        return noSynonyms(name, in -> new NGramTokenFilter(in, minGram, maxGram, preserveOriginal));
    }

    private static TokenFilterFactory patternCapture(IndexSettings index, Environment env, String name, Settings settings) {
        List<String> regexes = settings.getAsList("patterns", null);
        if (regexes == null) {
            throw new IllegalArgumentException("required setting 'patterns' is missing for token filter [" + name + "]");
        }
        Pattern[] patterns = regexes.stream().map(Pattern::compile).toArray(Pattern[]::new);
        boolean preserveOriginal = settings.getAsBoolean("preserve_original", true);
        return filter(name, in -> new PatternCaptureGroupTokenFilter(in, preserveOriginal, patterns));
    }

    private static TokenFilterFactory patternReplace(IndexSettings index, Environment env, String name, Settings settings) {
        String regex = settings.get("pattern");
        if (regex == null) {
            throw new IllegalArgumentException("pattern is missing for [" + name + "] token filter of type 'pattern_replace'");
        }
        Pattern pattern = Regex.compile(regex, settings.get("flags"));
        String replacement = settings.get("replacement", "");
        boolean all = settings.getAsBoolean("all", true);
        return normalizing(name, in -> new PatternReplaceFilter(in, pattern, replacement, all));
    }

    private static TokenFilterFactory snowball(IndexSettings index, Environment env, String name, Settings settings) {
        String language = settings.get("language", "English");
        String stemmer = language.isEmpty() ? language : Character.toUpperCase(language.charAt(0)) + language.substring(1);
        try {
            new SnowballFilter(new EmptyTokenStream(), stemmer).close();
        } catch (Exception e) {
            throw new IllegalArgumentException("Unknown snowball language [" + language + "]", e);
        }
        return filter(name, in -> new SnowballFilter(in, stemmer));
    }

    private static TokenFilterFactory stemmer(IndexSettings index, Environment env, String name, Settings settings) {
        String language = settings.get("language", settings.get("name", "porter"));
        return filter(name, Stemmers.forLanguage(language));
    }

    private static TokenFilterFactory stemmerOverride(IndexSettings index, Environment env, String name, Settings settings) {
        List<String> rules = Analysis.getWordList(env, settings, "rules");
        if (rules == null) {
            throw new IllegalArgumentException("stemmer override filter requires either `rules` or `rules_path` to be configured");
        }
        StemmerOverrideFilter.StemmerOverrideMap overrides = Rules.stemmerOverrides(rules);
        return filter(name, in -> new StemmerOverrideFilter(in, overrides));
    }

    private static TokenFilterFactory truncate(IndexSettings index, Environment env, String name, Settings settings) {
        int length = settings.getAsInt("length", 10);
        if (length <= 0) {
            throw new IllegalArgumentException("length parameter must be provided");
        }
        return filter(name, in -> new TruncateTokenFilter(in, length));
    }

    private static TokenFilterFactory wordDelimiter(Environment env, String name, Settings settings, boolean graph) {
        int flags = 0;
        flags |= flag(settings, "generate_word_parts", true, WordDelimiterGraphFilter.GENERATE_WORD_PARTS);
        flags |= flag(settings, "generate_number_parts", true, WordDelimiterGraphFilter.GENERATE_NUMBER_PARTS);
        flags |= flag(settings, "catenate_words", false, WordDelimiterGraphFilter.CATENATE_WORDS);
        flags |= flag(settings, "catenate_numbers", false, WordDelimiterGraphFilter.CATENATE_NUMBERS);
        flags |= flag(settings, "catenate_all", false, WordDelimiterGraphFilter.CATENATE_ALL);
        flags |= flag(settings, "split_on_case_change", true, WordDelimiterGraphFilter.SPLIT_ON_CASE_CHANGE);
        flags |= flag(settings, "preserve_original", false, WordDelimiterGraphFilter.PRESERVE_ORIGINAL);
        flags |= flag(settings, "split_on_numerics", true, WordDelimiterGraphFilter.SPLIT_ON_NUMERICS);
        flags |= flag(settings, "stem_english_possessive", true, WordDelimiterGraphFilter.STEM_ENGLISH_POSSESSIVE);
        flags |= flag(settings, "ignore_keywords", false, WordDelimiterGraphFilter.IGNORE_KEYWORDS);
        CharArraySet protectedWords = Analysis.getWordSet(env, settings, "protected_words");
        List<String> typeRules = Analysis.getWordList(env, settings, "type_table");
        byte[] types = typeRules == null ? WordDelimiterIterator.DEFAULT_WORD_DELIM_TABLE : Rules.typeTable(typeRules);
        boolean adjustOffsets = settings.getAsBoolean("adjust_offsets", true);
        int chosen = flags;
        return noSynonyms(
            name,
            graph
                ? in -> new WordDelimiterGraphFilter(in, adjustOffsets, types, chosen, protectedWords)
                : in -> new WordDelimiterFilter(in, types, chosen, protectedWords)
        );
    }

    private static int flag(Settings settings, String key, boolean byDefault, int flag) {
        return settings.getAsBoolean(key, byDefault) ? flag : 0;
    }
}
