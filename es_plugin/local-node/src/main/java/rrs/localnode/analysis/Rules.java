package rrs.localnode.analysis;

import org.apache.lucene.analysis.charfilter.NormalizeCharMap;
import org.apache.lucene.analysis.miscellaneous.StemmerOverrideFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterFilter;
import org.apache.lucene.analysis.miscellaneous.WordDelimiterIterator;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

@SuppressWarnings("deprecation") // WordDelimiterFilter: the only public home of the character type constants
/** The {@code left => right} rule lists of the mapping char filter, word delimiter type tables and stemmer overrides. */
final class Rules {

    private static final Pattern RULE = Pattern.compile("(.*)\\s*=>\\s*(.*)\\s*$");

    private Rules() {}

    /** A rule side with its escapes resolved: {@code \\n \\t \\r \\b \\f \\\\ \\' \\"} and {@code \\uXXXX}. */
    static String unescape(String text) {
        StringBuilder out = new StringBuilder(text.length());
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c != '\\' || i + 1 == text.length()) {
                out.append(c);
                continue;
            }
            char next = text.charAt(++i);
            switch (next) {
                case 'n' -> out.append('\n');
                case 't' -> out.append('\t');
                case 'r' -> out.append('\r');
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'u' -> {
                    if (i + 4 >= text.length()) {
                        throw new IllegalArgumentException("Invalid escaped char in [" + text + "]");
                    }
                    out.append((char) Integer.parseInt(text.substring(i + 1, i + 5), 16));
                    i += 4;
                }
                default -> out.append(next);
            }
        }
        return out.toString();
    }

    private static Matcher rule(String line, String what) {
        Matcher matcher = RULE.matcher(line);
        if (matcher.find() == false) {
            throw new IllegalArgumentException("Invalid " + what + " rule: [" + line + "]");
        }
        return matcher;
    }

    /** The mapping char filter's {@code "ph => f"} rules; the left side must not be empty. */
    static NormalizeCharMap charMap(List<String> lines) {
        NormalizeCharMap.Builder builder = new NormalizeCharMap.Builder();
        for (String line : lines) {
            Matcher matcher = rule(line, "mapping");
            String left = unescape(matcher.group(1).trim());
            String right = unescape(matcher.group(2).trim());
            if (left.isEmpty()) {
                throw new IllegalArgumentException("Invalid mapping rule: [" + line + "]. Illegal mapping.");
            }
            builder.add(left, right);
        }
        return builder.build();
    }

    /** A word delimiter {@code type_table}: {@code "$ => DIGIT"} gives one character one of LOWER, UPPER, ALPHA, DIGIT, ALPHANUM, SUBWORD_DELIM. */
    static byte[] typeTable(List<String> lines) {
        Map<Character, Byte> types = new TreeMap<>();
        for (String line : lines) {
            Matcher matcher = rule(line, "type table");
            String left = unescape(matcher.group(1).trim());
            if (left.length() != 1) {
                throw new IllegalArgumentException("Invalid type table rule: [" + line + "]. Only a single character is allowed.");
            }
            types.put(left.charAt(0), type(matcher.group(2).trim(), line));
        }
        int size = WordDelimiterIterator.DEFAULT_WORD_DELIM_TABLE.length;
        for (char c : types.keySet()) {
            size = Math.max(size, c + 1);
        }
        byte[] table = new byte[size];
        for (int i = 0; i < size; i++) {
            table[i] = WordDelimiterIterator.getType(i);
        }
        types.forEach((c, type) -> table[c] = type);
        return table;
    }

    private static byte type(String name, String line) {
        return switch (name.toUpperCase(Locale.ROOT)) {
            case "LOWER" -> (byte) WordDelimiterFilter.LOWER;
            case "UPPER" -> (byte) WordDelimiterFilter.UPPER;
            case "ALPHA" -> (byte) WordDelimiterFilter.ALPHA;
            case "DIGIT" -> (byte) WordDelimiterFilter.DIGIT;
            case "ALPHANUM" -> (byte) WordDelimiterFilter.ALPHANUM;
            case "SUBWORD_DELIM" -> (byte) WordDelimiterFilter.SUBWORD_DELIM;
            default -> throw new IllegalArgumentException("Invalid type table rule: [" + line + "]. Illegal type.");
        };
    }

    /** stemmer_override's {@code "running, runs => run"} rules. */
    static StemmerOverrideFilter.StemmerOverrideMap stemmerOverrides(List<String> lines) {
        StemmerOverrideFilter.Builder builder = new StemmerOverrideFilter.Builder(false);
        for (String line : lines) {
            String[] sides = line.split("=>", -1);
            String override = sides.length == 2 ? sides[1].trim() : "";
            if (override.isEmpty() || override.indexOf(',') != -1) {
                throw new IllegalArgumentException("Invalid Keyword override Rule:" + line);
            }
            for (String key : sides[0].split(",", -1)) {
                if (key.trim().isEmpty()) {
                    throw new IllegalArgumentException("Invalid Keyword override Rule:" + line);
                }
                builder.add(key.trim(), override);
            }
        }
        try {
            return builder.build();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
