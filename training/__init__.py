"""Reranker training: fine-tune a cross-encoder on the user's judgments, with hard
negatives mined from their own index by the service's hybrid retrieval
(``rrs train-reranker``)."""
