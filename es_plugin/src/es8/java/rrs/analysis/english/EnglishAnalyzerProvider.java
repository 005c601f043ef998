package rrs.analysis.english;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.index.IndexSettings;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.Analysis;

/**
 * The 8.x twin of {@code src/main/java/rrs/analysis/english/EnglishAnalyzerProvider.java}: the
 * same Lucene {@link EnglishAnalyzer} and settings ({@code stopwords}, {@code stopwords_path},
 * {@code stem_exclusion}); only the 8.x base class constructor also takes the settings.
 */
public final class EnglishAnalyzerProvider extends AbstractIndexAnalyzerProvider<EnglishAnalyzer> {

    private final EnglishAnalyzer analyzer;

    public EnglishAnalyzerProvider(IndexSettings indexSettings, Environment environment, String name, Settings settings) {
        super(name, settings);
        CharArraySet stopWords = Analysis.parseStopWords(environment, settings, EnglishAnalyzer.getDefaultStopSet());
        CharArraySet stemExclusion = Analysis.parseStemExclusion(settings, CharArraySet.EMPTY_SET);
        analyzer = new EnglishAnalyzer(stopWords, stemExclusion);
    }

    @Override
    public EnglishAnalyzer get() {
        return analyzer;
    }
}
