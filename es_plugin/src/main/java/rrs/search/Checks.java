package rrs.search;

/** Checks of request parameters: each failure is an IllegalArgumentException, which Elasticsearch answers with a 400. */
final class Checks {

    private Checks() {}

    static int positive(Object value, int fallback, String owner, String name) {
        int v = value == null ? fallback : (Integer) value;
        if (v < 1) {
            throw new IllegalArgumentException("[" + owner + "] [" + name + "] must be at least 1, got " + v);
        }
        return v;
    }

    static String oneOf(Object value, String fallback, String owner, String name, String... allowed) {
        String v = value == null ? fallback : (String) value;
        for (String choice : allowed) {
            if (choice.equals(v)) {
                return v;
            }
        }
        throw new IllegalArgumentException(
            "[" + owner + "] [" + name + "] must be one of " + String.join(", ", allowed) + "; got [" + v + "]"
        );
    }
}
