package rrs.localnode.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.ar.ArabicStemFilter;
import org.apache.lucene.analysis.bg.BulgarianStemFilter;
import org.apache.lucene.analysis.bn.BengaliStemFilter;
import org.apache.lucene.analysis.br.BrazilianStemFilter;
import org.apache.lucene.analysis.ckb.SoraniStemFilter;
import org.apache.lucene.analysis.cz.CzechStemFilter;
import org.apache.lucene.analysis.de.GermanLightStemFilter;
import org.apache.lucene.analysis.de.GermanMinimalStemFilter;
import org.apache.lucene.analysis.el.GreekStemFilter;
import org.apache.lucene.analysis.en.EnglishMinimalStemFilter;
import org.apache.lucene.analysis.en.EnglishPossessiveFilter;
import org.apache.lucene.analysis.en.KStemFilter;
import org.apache.lucene.analysis.en.PorterStemFilter;
import org.apache.lucene.analysis.es.SpanishLightStemFilter;
import org.apache.lucene.analysis.es.SpanishPluralStemFilter;
import org.apache.lucene.analysis.fa.PersianStemFilter;
import org.apache.lucene.analysis.fi.FinnishLightStemFilter;
import org.apache.lucene.analysis.fr.FrenchLightStemFilter;
import org.apache.lucene.analysis.fr.FrenchMinimalStemFilter;
import org.apache.lucene.analysis.gl.GalicianMinimalStemFilter;
import org.apache.lucene.analysis.gl.GalicianStemFilter;
import org.apache.lucene.analysis.hi.HindiStemFilter;
import org.apache.lucene.analysis.hu.HungarianLightStemFilter;
import org.apache.lucene.analysis.id.IndonesianStemFilter;
import org.apache.lucene.analysis.it.ItalianLightStemFilter;
import org.apache.lucene.analysis.lv.LatvianStemFilter;
import org.apache.lucene.analysis.no.NorwegianLightStemFilter;
import org.apache.lucene.analysis.no.NorwegianLightStemFilterFactory;
import org.apache.lucene.analysis.no.NorwegianMinimalStemFilter;
import org.apache.lucene.analysis.no.NorwegianMinimalStemFilterFactory;
import org.apache.lucene.analysis.pt.PortugueseLightStemFilter;
import org.apache.lucene.analysis.pt.PortugueseMinimalStemFilter;
import org.apache.lucene.analysis.pt.PortugueseStemFilter;
import org.apache.lucene.analysis.ru.RussianLightStemFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.apache.lucene.analysis.sv.SwedishLightStemFilter;
import org.tartarus.snowball.SnowballStemmer;
import org.tartarus.snowball.ext.ArmenianStemmer;
import org.tartarus.snowball.ext.BasqueStemmer;
import org.tartarus.snowball.ext.CatalanStemmer;
import org.tartarus.snowball.ext.DanishStemmer;
import org.tartarus.snowball.ext.DutchStemmer;
import org.tartarus.snowball.ext.EnglishStemmer;
import org.tartarus.snowball.ext.EstonianStemmer;
import org.tartarus.snowball.ext.FinnishStemmer;
import org.tartarus.snowball.ext.FrenchStemmer;
import org.tartarus.snowball.ext.GermanStemmer;
import org.tartarus.snowball.ext.HungarianStemmer;
import org.tartarus.snowball.ext.IrishStemmer;
import org.tartarus.snowball.ext.ItalianStemmer;
import org.tartarus.snowball.ext.LithuanianStemmer;
import org.tartarus.snowball.ext.NorwegianStemmer;
import org.tartarus.snowball.ext.PortugueseStemmer;
import org.tartarus.snowball.ext.RomanianStemmer;
import org.tartarus.snowball.ext.RussianStemmer;
import org.tartarus.snowball.ext.SerbianStemmer;
import org.tartarus.snowball.ext.SpanishStemmer;
import org.tartarus.snowball.ext.SwedishStemmer;
import org.tartarus.snowball.ext.TurkishStemmer;

import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;

/**
 * The {@code stemmer} token filter's {@code language} values (matched ignoring case; the
 * camel-case spellings too), as documented for Elasticsearch's stemmer token filter. The
 * default is {@code porter}. Values that need a stemmer Lucene 10 removed ({@code dutch_kp},
 * {@code lovins}) are refused, as on Elasticsearch 9.
 */
final class Stemmers {

    private static final Map<String, UnaryOperator<TokenStream>> BY_LANGUAGE = new HashMap<>();

    private static void put(UnaryOperator<TokenStream> stemmer, String... names) {
        for (String name : names) {
            BY_LANGUAGE.put(name.toLowerCase(Locale.ROOT), stemmer);
        }
    }

    private static UnaryOperator<TokenStream> snowball(Supplier<SnowballStemmer> stemmer) {
        return in -> new SnowballFilter(in, stemmer.get());
    }

    /** The Lucene factories' arguments for Nynorsk (the variant constant is not public in Lucene 10). */
    private static Map<String, String> nynorsk() {
        return new HashMap<>(Map.of("variant", "nn"));
    }

    static {
        put(ArabicStemFilter::new, "arabic");
        put(snowball(ArmenianStemmer::new), "armenian");
        put(snowball(BasqueStemmer::new), "basque");
        put(BengaliStemFilter::new, "bengali");
        put(BrazilianStemFilter::new, "brazilian");
        put(BulgarianStemFilter::new, "bulgarian");
        put(snowball(CatalanStemmer::new), "catalan");
        put(CzechStemFilter::new, "czech");
        put(snowball(DanishStemmer::new), "danish");
        put(snowball(DutchStemmer::new), "dutch");
        put(PorterStemFilter::new, "english", "porter");
        put(KStemFilter::new, "light_english", "lightEnglish", "kstem");
        put(snowball(EnglishStemmer::new), "porter2");
        put(EnglishMinimalStemFilter::new, "minimal_english", "minimalEnglish");
        put(EnglishPossessiveFilter::new, "possessive_english", "possessiveEnglish");
        put(snowball(EstonianStemmer::new), "estonian");
        put(snowball(FinnishStemmer::new), "finnish");
        put(FinnishLightStemFilter::new, "light_finish", "lightFinish", "light_finnish", "lightFinnish");
        put(snowball(FrenchStemmer::new), "french");
        put(FrenchLightStemFilter::new, "light_french", "lightFrench");
        put(FrenchMinimalStemFilter::new, "minimal_french", "minimalFrench");
        put(GalicianStemFilter::new, "galician");
        put(GalicianMinimalStemFilter::new, "minimal_galician");
        put(snowball(GermanStemmer::new), "german", "german2");
        put(GermanLightStemFilter::new, "light_german", "lightGerman");
        put(GermanMinimalStemFilter::new, "minimal_german", "minimalGerman");
        put(GreekStemFilter::new, "greek");
        put(HindiStemFilter::new, "hindi");
        put(snowball(HungarianStemmer::new), "hungarian");
        put(HungarianLightStemFilter::new, "light_hungarian", "lightHungarian");
        put(IndonesianStemFilter::new, "indonesian");
        put(snowball(IrishStemmer::new), "irish");
        put(snowball(ItalianStemmer::new), "italian");
        put(ItalianLightStemFilter::new, "light_italian", "lightItalian");
        put(LatvianStemFilter::new, "latvian");
        put(snowball(LithuanianStemmer::new), "lithuanian");
        put(snowball(NorwegianStemmer::new), "norwegian");
        put(NorwegianLightStemFilter::new, "light_norwegian", "lightNorwegian");
        put(NorwegianMinimalStemFilter::new, "minimal_norwegian", "minimalNorwegian");
        put(in -> new NorwegianLightStemFilterFactory(nynorsk()).create(in), "light_nynorsk", "lightNynorsk");
        put(in -> new NorwegianMinimalStemFilterFactory(nynorsk()).create(in), "minimal_nynorsk", "minimalNynorsk");
        put(PersianStemFilter::new, "persian");
        put(snowball(PortugueseStemmer::new), "portuguese");
        put(PortugueseLightStemFilter::new, "light_portuguese", "lightPortuguese");
        put(PortugueseMinimalStemFilter::new, "minimal_portuguese", "minimalPortuguese");
        put(PortugueseStemFilter::new, "portuguese_rslp");
        put(snowball(RomanianStemmer::new), "romanian");
        put(snowball(RussianStemmer::new), "russian");
        put(RussianLightStemFilter::new, "light_russian", "lightRussian");
        put(snowball(SerbianStemmer::new), "serbian");
        put(snowball(SpanishStemmer::new), "spanish");
        put(SpanishLightStemFilter::new, "light_spanish", "lightSpanish");
        put(SpanishPluralStemFilter::new, "spanish_plural");
        put(SoraniStemFilter::new, "sorani");
        put(snowball(SwedishStemmer::new), "swedish");
        put(SwedishLightStemFilter::new, "light_swedish", "lightSwedish");
        put(snowball(TurkishStemmer::new), "turkish");
    }

    private Stemmers() {}

    /** The stemmer for {@code language}; an unknown one is an error naming it. */
    static UnaryOperator<TokenStream> forLanguage(String language) {
        UnaryOperator<TokenStream> stemmer = BY_LANGUAGE.get(language.toLowerCase(Locale.ROOT));
        if (stemmer == null) {
            throw new IllegalArgumentException("Unknown stemmer language [" + language + "]");
        }
        return stemmer;
    }
}
