package rrs.localnode.analysis;

import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.TokenFilter;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.tokenattributes.CharTermAttribute;
import org.apache.lucene.analysis.tokenattributes.PositionIncrementAttribute;

import java.io.IOException;

/**
 * The {@code unique} token filter: drops a token whose text was already seen in the stream, or,
 * with {@code only_on_same_position}, already seen at the same position. Positions of the tokens
 * kept are left as they were.
 */
final class UniqueTokenFilter extends TokenFilter {

    private final CharTermAttribute term = addAttribute(CharTermAttribute.class);
    private final PositionIncrementAttribute position = addAttribute(PositionIncrementAttribute.class);
    private final CharArraySet seen = new CharArraySet(8, false);
    private final boolean onlyOnSamePosition;

    UniqueTokenFilter(TokenStream in, boolean onlyOnSamePosition) {
        super(in);
        this.onlyOnSamePosition = onlyOnSamePosition;
    }

    @Override
    public boolean incrementToken() throws IOException {
        while (input.incrementToken()) {
            char[] buffer = term.buffer();
            int length = term.length();
            boolean duplicate;
            if (onlyOnSamePosition) {
                if (position.getPositionIncrement() > 0) {
                    seen.clear();
                }
                duplicate = position.getPositionIncrement() == 0 && seen.contains(buffer, 0, length);
            } else {
                duplicate = seen.contains(buffer, 0, length);
            }
            if (duplicate == false) {
                char[] copy = new char[length];
                System.arraycopy(buffer, 0, copy, 0, length);
                seen.add(copy);
                return true;
            }
        }
        return false;
    }

    @Override
    public void reset() throws IOException {
        super.reset();
        seen.clear();
    }
}
