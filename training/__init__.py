"""Learning from the user's data: fine-tune the cross-encoder (``rrs train-reranker``) and the
bi-encoder (``rrs train-encoder``) on their judgments, with hard negatives mined from their own
index by the service's hybrid retrieval, and the loop that does both (``rrs adapt``)."""
