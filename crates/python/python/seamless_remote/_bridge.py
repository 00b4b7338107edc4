"""Completes an asyncio future from the Rust runtime (called on the future's own loop)."""


def resolve(future, ok, value):
    if future.done():  # cancelled meanwhile: nobody waits for the answer
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
