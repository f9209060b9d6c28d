# Temporary re-export while tests move to aispend.sources.reader.
from aispend.sources.reader import *  # noqa: F401,F403
from aispend.sources.reader import CHUNK, MAX_LINE, ChunkReader, LineReader  # noqa: F401
