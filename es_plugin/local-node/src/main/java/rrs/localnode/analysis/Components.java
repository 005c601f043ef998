package rrs.localnode.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.Tokenizer;
import org.elasticsearch.index.analysis.CharFilterFactory;
import org.elasticsearch.index.analysis.NormalizingCharFilterFactory;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;

import java.io.Reader;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;

/**
 * Small factories for the analysis components, implementing the server's interfaces directly (their
 * abstract base classes take other constructor arguments in 8.x than in 9.x), and the parameter
 * checks the analysis-common module makes.
 */
final class Components {

    private Components() {}

    /** A token filter that wraps the stream with {@code create}. */
    static TokenFilterFactory filter(String name, UnaryOperator<TokenStream> create) {
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream stream) {
                return create.apply(stream);
            }
        };
    }

    /** A token filter also allowed in normalizers (keyword fields), where it applies the same way. */
    static TokenFilterFactory normalizing(String name, UnaryOperator<TokenStream> create) {
        return new NormalizingTokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream stream) {
                return create.apply(stream);
            }
        };
    }

    /** A token filter that cannot parse synonym rules (n-grams and the like split or multiply the rule's terms). */
    static TokenFilterFactory noSynonyms(String name, UnaryOperator<TokenStream> create) {
        return new TokenFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public TokenStream create(TokenStream stream) {
                return create.apply(stream);
            }

            @Override
            public TokenFilterFactory getSynonymFilter() {
                throw new IllegalArgumentException("Token filter [" + name + "] cannot be used to parse synonyms");
            }
        };
    }

    static TokenizerFactory tokenizer(String name, Supplier<Tokenizer> create) {
        return TokenizerFactory.newFactory(name, create);
    }

    static CharFilterFactory charFilter(String name, Function<Reader, Reader> create) {
        return new CharFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Reader create(Reader reader) {
                return create.apply(reader);
            }
        };
    }

    static CharFilterFactory normalizingCharFilter(String name, Function<Reader, Reader> create) {
        return new NormalizingCharFilterFactory() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Reader create(Reader reader) {
                return create.apply(reader);
            }
        };
    }

    /** analysis-common's limit on n-gram ranges ({@code index.max_ngram_diff}, 1 by default). */
    static void checkNgramDiff(int minGram, int maxGram, int maxAllowed, String what) {
        int diff = maxGram - minGram;
        if (diff > maxAllowed) {
            throw new IllegalArgumentException(
                "The difference between max_gram and min_gram in " + what + " must be less than or equal to: ["
                    + maxAllowed + "] but was [" + diff + "]. This limit can be set by changing the [index.max_ngram_diff] index level setting."
            );
        }
    }
}
