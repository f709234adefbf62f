"""What the tests and the benchmarks share: fake services (an NVIDIA API that follows its
contract, Whisper engines, tiny diffusers pipelines), word error rates, storyboard folders made
from the demo recordings. Nothing here imports `tests`."""
