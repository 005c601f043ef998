package rrs.localnode.analysis;

import org.apache.lucene.analysis.charfilter.HTMLStripCharFilter;
import org.apache.lucene.analysis.charfilter.MappingCharFilter;
import org.apache.lucene.analysis.charfilter.NormalizeCharMap;
import org.apache.lucene.analysis.pattern.PatternReplaceCharFilter;
import org.elasticsearch.common.regex.Regex;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.CharFilterFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

import static org.elasticsearch.plugins.AnalysisPlugin.requiresAnalysisSettings;
import static rrs.localnode.analysis.Components.charFilter;
import static rrs.localnode.analysis.Components.normalizingCharFilter;

/** analysis-common's char filters: {@code html_strip}, {@code mapping}, {@code pattern_replace}. */
public final class CharFilters {

    private CharFilters() {}

    /** Name -> provider, for {@link org.elasticsearch.plugins.AnalysisPlugin#getCharFilters()}. */
    public static Map<String, AnalysisProvider<CharFilterFactory>> all() {
        Map<String, AnalysisProvider<CharFilterFactory>> filters = new TreeMap<>();
        // html_strip: escaped_tags, the tags kept as they are
        filters.put("html_strip", (index, env, name, settings) -> {
            Set<String> escaped = new HashSet<>(settings.getAsList("escaped_tags", List.of()));
            return charFilter(name, reader -> escaped.isEmpty() ? new HTMLStripCharFilter(reader) : new HTMLStripCharFilter(reader, escaped));
        });
        // mapping: mappings or mappings_path, "key => value" lines
        filters.put("mapping", requiresAnalysisSettings((index, env, name, settings) -> {
            List<String> rules = Analysis.getWordList(env, settings, "mappings");
            if (rules == null) {
                throw new IllegalArgumentException("mapping requires either `mappings` or `mappings_path` to be configured");
            }
            NormalizeCharMap map = Rules.charMap(rules);
            return normalizingCharFilter(name, reader -> new MappingCharFilter(map, reader));
        }));
        // pattern_replace: pattern (required), replacement "", flags
        filters.put("pattern_replace", requiresAnalysisSettings((index, env, name, settings) -> {
            String regex = settings.get("pattern");
            if (regex == null || regex.isEmpty()) {
                throw new IllegalArgumentException("pattern is missing for [" + name + "] char filter of type 'pattern_replace'");
            }
            Pattern pattern = Regex.compile(regex, settings.get("flags"));
            String replacement = settings.get("replacement", "");
            return normalizingCharFilter(name, reader -> new PatternReplaceCharFilter(pattern, replacement, reader));
        }));
        return filters;
    }
}
