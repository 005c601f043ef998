package rrs.embed;

import org.elasticsearch.common.util.concurrent.ThreadContext;

/** What rrs_embed needs from the node, made once in the plugin's createComponents. */
public record EmbedServices(EmbedPool pool, IndexModels models, ThreadContext threadContext) {}
