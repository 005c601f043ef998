package rrs.analysis.english;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.Analysis;

/**
 * Lucene's {@link EnglishAnalyzer}: standard tokenizer, English possessive filter,
 * lowercase, stop words, keyword marker, Porter stemmer.
 *
 * <p>With no settings it uses Lucene's English stop set and no stem exclusions. The
 * optional {@code stopwords}, {@code stopwords_path} and {@code stem_exclusion} settings
 * are read with the server's own helpers, so they take the same values as elsewhere.
 */
public final class EnglishAnalyzerProvider extends AbstractIndexAnalyzerProvider<EnglishAnalyzer> {

    private final EnglishAnalyzer analyzer;

    public EnglishAnalyzerProvider(IndexSettings indexSettings, Environment environment, String name, Settings settings) {
        super(name);
        CharArraySet stopWords = Analysis.parseStopWords(environment, settings, EnglishAnalyzer.getDefaultStopSet());
        CharArraySet stemExclusion = Analysis.parseStemExclusion(settings, CharArraySet.EMPTY_SET);
        analyzer = new EnglishAnalyzer(stopWords, stemExclusion);
    }

    @Override
    public EnglishAnalyzer get() {
        return analyzer;
    }
}
