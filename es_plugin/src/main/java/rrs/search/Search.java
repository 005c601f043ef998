package rrs.search;

import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.search.rank.RankBuilder;

/** What the plugin class registers from this package that is not public on its own. */
public final class Search {

    private Search() {}

    /** rrs_rerank's rank builder travels to the shards: its reader. */
    public static NamedWriteableRegistry.Entry rankBuilderEntry() {
        return new NamedWriteableRegistry.Entry(RankBuilder.class, RerankRankBuilder.NAME, RerankRankBuilder::new);
    }
}
