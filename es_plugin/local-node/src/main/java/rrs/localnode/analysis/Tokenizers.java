package rrs.localnode.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.classic.ClassicTokenizer;
import org.apache.lucene.analysis.core.KeywordTokenizer;
import org.apache.lucene.analysis.core.LetterTokenizer;
import org.apache.lucene.analysis.core.WhitespaceTokenizer;
import org.apache.lucene.analysis.email.UAX29URLEmailTokenizer;
import org.apache.lucene.analysis.ngram.EdgeNGramTokenizer;
import org.apache.lucene.analysis.ngram.NGramTokenizer;
import org.apache.lucene.analysis.path.PathHierarchyTokenizer;
import org.apache.lucene.analysis.path.ReversePathHierarchyTokenizer;
import org.apache.lucene.analysis.pattern.PatternTokenizer;
import org.apache.lucene.analysis.pattern.SimplePatternSplitTokenizer;
import org.apache.lucene.analysis.pattern.SimplePatternTokenizer;
import org.apache.lucene.analysis.standard.StandardAnalyzer;
import org.apache.lucene.analysis.th.ThaiTokenizer;
import org.apache.lucene.analysis.util.CharTokenizer;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;

import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.IntPredicate;
import java.util.regex.Pattern;

import static rrs.localnode.analysis.Components.tokenizer;

/**
 * analysis-common's tokenizer types, with its parameters and defaults. The server has
 * {@code standard} already. Not here: the deprecated {@code lowercase} tokenizer.
 */
public final class Tokenizers {

    private Tokenizers() {}

    /** Name -> provider, for {@link org.elasticsearch.plugins.AnalysisPlugin#getTokenizers()}. */
    public static Map<String, AnalysisProvider<TokenizerFactory>> all() {
        Map<String, AnalysisProvider<TokenizerFactory>> tokenizers = new TreeMap<>();
        tokenizers.put("char_group", Tokenizers::charGroup);
        tokenizers.put("classic", (index, env, name, settings) -> {
            int max = maxTokenLength(settings);
            return tokenizer(name, () -> {
                ClassicTokenizer tokenizer = new ClassicTokenizer();
                tokenizer.setMaxTokenLength(max);
                return tokenizer;
            });
        });
        tokenizers.put("edge_ngram", (index, env, name, settings) -> ngram(index, name, settings, true));
        tokenizers.put("keyword", (index, env, name, settings) -> {
            int bufferSize = settings.getAsInt("buffer_size", 256);
            return tokenizer(name, () -> new KeywordTokenizer(bufferSize));
        });
        tokenizers.put("letter", (index, env, name, settings) -> tokenizer(name, LetterTokenizer::new));
        tokenizers.put("ngram", (index, env, name, settings) -> ngram(index, name, settings, false));
        tokenizers.put("path_hierarchy", Tokenizers::pathHierarchy);
        tokenizers.put("PathHierarchy", Tokenizers::pathHierarchy);
        tokenizers.put("pattern", (index, env, name, settings) -> {
            Pattern pattern = Regex.compile(settings.get("pattern", "\\W+"), settings.get("flags"));
            int group = settings.getAsInt("group", -1);
            return tokenizer(name, () -> new PatternTokenizer(pattern, group));
        });
        tokenizers.put("simple_pattern", (index, env, name, settings) -> {
            String pattern = settings.get("pattern", "");
            new SimplePatternTokenizer(pattern).close(); // an invalid pattern fails at index creation
            return tokenizer(name, () -> new SimplePatternTokenizer(pattern));
        });
        tokenizers.put("simple_pattern_split", (index, env, name, settings) -> {
            String pattern = settings.get("pattern", "");
            new SimplePatternSplitTokenizer(pattern).close();
            return tokenizer(name, () -> new SimplePatternSplitTokenizer(pattern));
        });
        tokenizers.put("thai", (index, env, name, settings) -> tokenizer(name, ThaiTokenizer::new));
        tokenizers.put("uax_url_email", (index, env, name, settings) -> {
            int max = maxTokenLength(settings);
            return tokenizer(name, () -> {
                UAX29URLEmailTokenizer tokenizer = new UAX29URLEmailTokenizer();
                tokenizer.setMaxTokenLength(max);
                return tokenizer;
            });
        });
        tokenizers.put("whitespace", (index, env, name, settings) -> {
            int max = maxTokenLength(settings);
            return tokenizer(name, () -> new WhitespaceTokenizer(TokenStream.DEFAULT_TOKEN_ATTRIBUTE_FACTORY, max));
        });
        return tokenizers;
    }

    private static int maxTokenLength(Settings settings) {
        return settings.getAsInt("max_token_length", StandardAnalyzer.DEFAULT_MAX_TOKEN_LENGTH);
    }

    /** ngram / edge_ngram: {@code min_gram} 1, {@code max_gram} 2, {@code token_chars} (all when empty), {@code custom_token_chars}. */
    private static TokenizerFactory ngram(IndexSettings index, String name, Settings settings, boolean edge) {
        int minGram = settings.getAsInt("min_gram", 1);
        int maxGram = settings.getAsInt("max_gram", 2);
        if (edge == false) {
            Components.checkNgramDiff(minGram, maxGram, index.getMaxNgramDiff(), "NGram Tokenizer");
        }
        IntPredicate tokenChars = tokenChars(settings.getAsList("token_chars", List.of()), settings.get("custom_token_chars", ""));
        if (edge) {
            return tokenizer(name, () -> tokenChars == null ? new EdgeNGramTokenizer(minGram, maxGram) : new EdgeNGramTokenizer(minGram, maxGram) {
                @Override
                protected boolean isTokenChar(int chr) {
                    return tokenChars.test(chr);
                }
            });
        }
        return tokenizer(name, () -> tokenChars == null ? new NGramTokenizer(minGram, maxGram) : new NGramTokenizer(minGram, maxGram) {
            @Override
            protected boolean isTokenChar(int chr) {
                return tokenChars.test(chr);
            }
        });
    }

    /** The n-gram tokenizers' {@code token_chars} classes: letter, digit, whitespace, punctuation, symbol, custom; null means every character. */
    static IntPredicate tokenChars(List<String> classes, String custom) {
        IntPredicate matcher = null;
        for (String name : classes) {
            IntPredicate one = switch (name.toLowerCase(Locale.ROOT)) {
                case "letter" -> Character::isLetter;
                case "digit" -> Character::isDigit;
                case "whitespace" -> Character::isWhitespace;
                case "punctuation" -> Tokenizers::isPunctuation;
                case "symbol" -> Tokenizers::isSymbol;
                case "custom" -> {
                    if (custom.isEmpty()) {
                        throw new IllegalArgumentException("Token type: [custom] requires setting `custom_token_chars`");
                    }
                    yield chr -> custom.indexOf(chr) >= 0;
                }
                default -> throw new IllegalArgumentException(
                    "Unknown token type: '" + name + "', must be one of [symbol, custom, digit, letter, whitespace, punctuation]"
                );
            };
            matcher = matcher == null ? one : matcher.or(one);
        }
        return matcher;
    }

    private static boolean isPunctuation(int chr) {
        return switch (Character.getType(chr)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.END_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                Character.INITIAL_QUOTE_PUNCTUATION, Character.OTHER_PUNCTUATION, Character.START_PUNCTUATION -> true;
            default -> false;
        };
    }

    private static boolean isSymbol(int chr) {
        return switch (Character.getType(chr)) {
            case Character.CURRENCY_SYMBOL, Character.MATH_SYMBOL, Character.OTHER_SYMBOL, Character.MODIFIER_SYMBOL -> true;
            default -> false;
        };
    }

    /**
     * char_group: splits on the {@code tokenize_on_chars} entries, each a single character, an escape
     * ({@code \\n}, {@code \\u0020}, ...) or a class (letter, digit, whitespace, punctuation, symbol);
     * {@code max_token_length} 255.
     */
    private static TokenizerFactory charGroup(IndexSettings index, Environment env, String name, Settings settings) {
        IntPredicate split = chr -> false;
        for (String entry : settings.getAsList("tokenize_on_chars", List.of())) {
            if (entry == null || entry.isEmpty()) {
                throw new IllegalArgumentException("[tokenize_on_chars] cannot contain empty characters");
            }
            IntPredicate one;
            if (entry.length() == 1) {
                int chr = entry.charAt(0);
                one = c -> c == chr;
            } else if (entry.startsWith("\\")) {
                String unescaped = Rules.unescape(entry);
                if (unescaped.length() != 1) {
                    throw new IllegalArgumentException("Invalid escaped char in [" + entry + "]");
                }
                int chr = unescaped.charAt(0);
                one = c -> c == chr;
            } else {
                one = switch (entry) {
                    case "letter" -> Character::isLetter;
                    case "digit" -> Character::isDigit;
                    case "whitespace" -> Character::isWhitespace;
                    case "punctuation" -> Tokenizers::isPunctuation;
                    case "symbol" -> Tokenizers::isSymbol;
                    default -> throw new IllegalArgumentException("Invalid escaped char in [" + entry + "]");
                };
            }
            split = split.or(one);
        }
        IntPredicate separator = split;
        int max = maxTokenLength(settings);
        return tokenizer(name, () -> new CharTokenizer(TokenStream.DEFAULT_TOKEN_ATTRIBUTE_FACTORY, max) {
            @Override
            protected boolean isTokenChar(int chr) {
                return separator.test(chr) == false;
            }
        });
    }

    /** path_hierarchy: {@code delimiter} '/', {@code replacement} (the delimiter), {@code reverse} false, {@code skip} 0. */
    private static TokenizerFactory pathHierarchy(IndexSettings index, Environment env, String name, Settings settings) {
        char delimiter = oneChar(settings.get("delimiter"), "delimiter", '/');
        char replacement = oneChar(settings.get("replacement"), "replacement", delimiter);
        boolean reverse = settings.getAsBoolean("reverse", false);
        int skip = settings.getAsInt("skip", 0);
        return tokenizer(name, () -> reverse ? new ReversePathHierarchyTokenizer(delimiter, replacement, skip) : new PathHierarchyTokenizer(delimiter, replacement, skip));
    }

    private static char oneChar(String value, String key, char byDefault) {
        if (value == null) {
            return byDefault;
        }
        if (value.length() != 1) {
            throw new IllegalArgumentException(key + " must be a one char value");
        }
        return value.charAt(0);
    }
}
