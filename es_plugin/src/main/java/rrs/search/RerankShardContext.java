package rrs.search;

import org.elasticsearch.common.document.DocumentField;
import org.elasticsearch.search.SearchHit;
import org.elasticsearch.search.SearchHits;
import org.elasticsearch.search.fetch.subphase.FetchFieldsContext;
import org.elasticsearch.search.fetch.subphase.FieldAndFormat;
import org.elasticsearch.search.internal.SearchContext;
import org.elasticsearch.search.rank.RankShardResult;
import org.elasticsearch.search.rank.feature.RankFeatureDoc;
import org.elasticsearch.search.rank.feature.RankFeatureShardResult;
import org.elasticsearch.search.rank.rerank.RerankingRankFeaturePhaseRankShardContext;

import java.util.ArrayList;
import java.util.List;

/**
 * On each shard, in the rank feature phase: the text the cross-encoder reads for each window
 * doc. With several fields their non-empty values are joined with ". ", so
 * {@code ["title", "text"]} reads "title. text" exactly as the service's passage_text does.
 */
final class RerankShardContext extends RerankingRankFeaturePhaseRankShardContext {

    private final List<String> fields;

    RerankShardContext(List<String> fields) {
        super(fields.get(0));
        this.fields = fields;
    }

    @Override
    public void prepareForFetch(SearchContext searchContext) {
        List<FieldAndFormat> wanted = new ArrayList<>();
        for (String field : fields) {
            wanted.add(new FieldAndFormat(field, null));
        }
        searchContext.fetchFieldsContext(new FetchFieldsContext(wanted));
    }

    @Override
    protected RankShardResult doBuildRankFeatureShardResult(SearchHits hits, int shardId) {
        SearchHit[] found = hits.getHits();
        RankFeatureDoc[] docs = new RankFeatureDoc[found.length];
        for (int i = 0; i < found.length; i++) {
            docs[i] = new RankFeatureDoc(found[i].docId(), found[i].getScore(), shardId);
            docs[i].featureData(List.of(text(found[i])));
        }
        return new RankFeatureShardResult(docs);
    }

    private String text(SearchHit hit) {
        List<String> parts = new ArrayList<>();
        for (String field : fields) {
            DocumentField values = hit.field(field);
            if (values == null) {
                continue;
            }
            List<String> strings = new ArrayList<>();
            for (Object value : values.getValues()) {
                if (value != null && value.toString().isEmpty() == false) {
                    strings.add(value.toString());
                }
            }
            if (strings.isEmpty() == false) {
                parts.add(String.join(" ", strings));
            }
        }
        return String.join(". ", parts);
    }
}
