package rrs.embed;

import org.elasticsearch.ElasticsearchStatusException;
import org.elasticsearch.action.ActionListener;
import org.elasticsearch.cluster.metadata.ProjectId;
import org.elasticsearch.common.util.concurrent.ThreadContext;
import org.elasticsearch.ingest.AbstractProcessor;
import org.elasticsearch.ingest.ConfigurationUtils;
import org.elasticsearch.ingest.IngestDocument;
import org.elasticsearch.ingest.Processor;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.threadpool.Scheduler;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * {@code rrs_embed}, an ingest processor: a passage's vector from the node's embedding pool, as
 * {@code rrs ingest} makes it, for documents that arrive by {@code _bulk} (Logstash, Beats, an
 * application's own indexing, a connector).
 *
 * <pre>{"rrs_embed": {"title_field": "title", "text_field": "text", "vector_field": "embedding", "model_field": "model"}}</pre>
 *
 * <p>What is embedded is what rrs ingest embeds for a passage: the title, a newline and the text
 * (ingest/chunking.py), or the text alone without a title, with the pool's passage prompt when it
 * has one. The vector goes to {@code vector_field}, the pool's model name to {@code model_field}
 * (core/passage.py's {@code embedding} and {@code model}). The pool's model must be the one the
 * target index was built with ({@code _meta.bi_encoder}; or the processor's {@code model}), else
 * the document fails.
 *
 * <p>A document that already carries a vector keeps it when its {@code model_field} names that
 * model (what rrs ingest sends: nothing is embedded twice), and fails otherwise. Every failure (no
 * pool, pool down or slow, a model mismatch, no text) fails the document with its reason, which
 * the pipeline's {@code on_failure} sees: a document is never indexed without its vector.
 *
 * <p>The documents of a bulk request reach a processor one at a time (the SPI hands over one
 * document per call, asynchronously); this one gathers those that arrive within
 * {@code rrs.embedder.batch_wait} into one {@code /embed} call of up to {@code rrs.embedder.batch_size}
 * texts (and the pool's own max_client_batch_size).
 */
public final class EmbedProcessor extends AbstractProcessor {

    public static final String TYPE = "rrs_embed";

    private record Item(IngestDocument doc, BiConsumer<IngestDocument, Exception> handler, String text, String expected,
                        Supplier<ThreadContext.StoredContext> context) {}

    private final String titleField;
    private final String textField;
    private final String vectorField;
    private final String modelField;
    private final String model;
    private final Supplier<EmbedServices> services;
    private final BiFunction<Long, Runnable, Scheduler.ScheduledCancellable> scheduler;
    private final Consumer<Runnable> generic;
    private final List<Item> gathered = new ArrayList<>(); // guarded by this
    private boolean flushScheduled; // guarded by this

    EmbedProcessor(String tag, String description, String titleField, String textField, String vectorField, String modelField,
                   String model, Supplier<EmbedServices> services,
                   BiFunction<Long, Runnable, Scheduler.ScheduledCancellable> scheduler, Consumer<Runnable> generic) {
        super(tag, description);
        this.titleField = titleField;
        this.textField = textField;
        this.vectorField = vectorField;
        this.modelField = modelField;
        this.model = model;
        this.services = services;
        this.scheduler = scheduler;
        this.generic = generic;
    }

    @Override
    public String getType() {
        return TYPE;
    }

    @Override
    public boolean isAsync() {
        return true;
    }

    @Override
    public IngestDocument execute(IngestDocument document) {
        throw new UnsupportedOperationException("rrs_embed is asynchronous");
    }

    @Override
    public void execute(IngestDocument document, BiConsumer<IngestDocument, Exception> handler) {
        EmbedServices found = services.get();
        if (found == null) {
            handler.accept(null, failure("the plugin's components are not made yet", RestStatus.SERVICE_UNAVAILABLE));
            return;
        }
        String expected = model != null ? model : found.models().modelOf(document.getMetadata().getIndex());
        String text;
        try {
            if (document.getFieldValue(vectorField, Object.class, true) != null) {
                Object had = document.getFieldValue(modelField, Object.class, true);
                if (expected == null || expected.equals(had)) {
                    handler.accept(document, null); // embedded already (rrs ingest sends its vectors): kept
                } else {
                    handler.accept(null, failure("the document already has a [" + vectorField + "] vector, from model [" + had
                        + "], and this index's is [" + expected + "]: send the passage without it to have it embedded, or set ["
                        + modelField + "] to the model that made it", RestStatus.BAD_REQUEST));
                }
                return;
            }
            text = passageText(string(document, titleField), string(document, textField));
        } catch (IllegalArgumentException e) {
            handler.accept(null, failure(e.getMessage(), RestStatus.BAD_REQUEST));
            return;
        }
        if (text.isEmpty()) {
            handler.accept(null, failure("the document has no text to embed: [" + titleField + "] and [" + textField
                + "] are missing or empty", RestStatus.BAD_REQUEST));
            return;
        }
        gather(new Item(document, handler, text, expected, found.threadContext().newRestorableContext(false)), found.pool());
    }

    /** What rrs ingest embeds for a one-passage document: title, newline, text (ingest/chunking.py); the text alone without a title. */
    static String passageText(String title, String text) {
        return title.isEmpty() ? text : title + "\n" + text;
    }

    private String string(IngestDocument document, String field) {
        Object value = document.getFieldValue(field, Object.class, true);
        if (value == null) {
            return "";
        }
        if (value instanceof String s) {
            return s;
        }
        throw new IllegalArgumentException("field [" + field + "] is not a string");
    }

    private static ElasticsearchStatusException failure(String message, RestStatus status) {
        return new ElasticsearchStatusException("[" + TYPE + "] " + message, status);
    }

    // --- batching: the documents of concurrent requests, in one call -----------------------------

    private void gather(Item item, EmbedPool pool) {
        List<Item> full = null;
        boolean schedule = false;
        int most = Math.max(1, Math.min(pool.batchSize(), pool.knownMaxBatch()));
        synchronized (this) {
            gathered.add(item);
            if (gathered.size() >= most) {
                full = take();
            } else if (flushScheduled == false) {
                flushScheduled = true;
                schedule = true;
            }
        }
        if (full != null) {
            send(full, pool);
        }
        if (schedule) {
            long wait = pool.batchWait().millis();
            if (wait <= 0) {
                flush(pool);
            } else {
                scheduler.apply(wait, () -> flush(pool));
            }
        }
    }

    private void flush(EmbedPool pool) {
        List<Item> ready;
        synchronized (this) {
            flushScheduled = false;
            ready = gathered.isEmpty() ? null : take();
        }
        if (ready != null) {
            send(ready, pool);
        }
    }

    private List<Item> take() {
        List<Item> batch = new ArrayList<>(gathered);
        gathered.clear();
        return batch;
    }

    private void send(List<Item> batch, EmbedPool pool) {
        List<String> texts = batch.stream().map(Item::text).toList();
        pool.embed(texts, EmbedPool.Kind.PASSAGE, pool.ingestTimeout(), "rrs.embedder.ingest_timeout", served -> {
            // refused before /embed when no document of the batch wants the pool's model
            ElasticsearchStatusException first = null;
            for (Item item : batch) {
                ElasticsearchStatusException wrong = item.expected() == null ? null
                    : IndexModels.mismatch(TYPE, Map.of(item.doc().getMetadata().getIndex(), item.expected()), served, pool.base());
                if (wrong == null) {
                    return null;
                }
                first = first == null ? wrong : first;
            }
            return first;
        }, ActionListener.wrap(vectors -> finish(batch, vectors, pool), e -> finish(batch, e)));
    }

    private void finish(List<Item> batch, EmbedPool.Vectors vectors, EmbedPool pool) {
        generic.accept(() -> {
            for (int i = 0; i < batch.size(); i++) {
                Item item = batch.get(i);
                Exception wrong = item.expected() == null ? null
                    : IndexModels.mismatch(TYPE, Map.of(item.doc().getMetadata().getIndex(), item.expected()), vectors.model(), pool.base());
                if (wrong == null) {
                    List<Float> values = new ArrayList<>(vectors.vectors()[i].length);
                    for (float x : vectors.vectors()[i]) {
                        values.add(x);
                    }
                    item.doc().setFieldValue(vectorField, values);
                    item.doc().setFieldValue(modelField, vectors.model());
                }
                complete(item, wrong);
            }
        });
    }

    private void finish(List<Item> batch, Exception e) {
        Exception reason = e instanceof ElasticsearchStatusException status && status.getMessage().startsWith("[" + TYPE + "]") == false
            ? new ElasticsearchStatusException("[" + TYPE + "] " + status.getMessage(), status.status(), status)
            : e;
        generic.accept(() -> batch.forEach(item -> complete(item, reason)));
    }

    private static void complete(Item item, Exception e) {
        try (ThreadContext.StoredContext ignored = item.context().get()) {
            if (e == null) {
                item.handler().accept(item.doc(), null);
            } else {
                item.handler().accept(null, e);
            }
        }
    }

    /** Reads the processor's options; unknown ones are refused by the pipeline's parser. */
    public static final class Factory implements Processor.Factory {

        private final Supplier<EmbedServices> services;
        private final BiFunction<Long, Runnable, Scheduler.ScheduledCancellable> scheduler;
        private final Consumer<Runnable> generic;

        public Factory(Supplier<EmbedServices> services, Processor.Parameters parameters) {
            this.services = services;
            this.scheduler = parameters.scheduler;
            this.generic = parameters.genericExecutor;
        }

        @Override
        public Processor create(Map<String, Processor.Factory> registry, String tag, String description, Map<String, Object> config,
                                ProjectId projectId) {
            return new EmbedProcessor(
                tag,
                description,
                ConfigurationUtils.readStringProperty(TYPE, tag, config, "title_field", "title"),
                ConfigurationUtils.readStringProperty(TYPE, tag, config, "text_field", "text"),
                ConfigurationUtils.readStringProperty(TYPE, tag, config, "vector_field", "embedding"),
                ConfigurationUtils.readStringProperty(TYPE, tag, config, "model_field", "model"),
                ConfigurationUtils.readOptionalStringProperty(TYPE, tag, config, "model"),
                services,
                scheduler,
                generic
            );
        }
    }
}
