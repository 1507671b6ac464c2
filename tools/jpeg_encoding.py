"""JPEG encoding: the quality images made by the tools are saved at, a JPEG's tables, and re-encoding with them."""
import io

from PIL import Image, JpegImagePlugin

SYNTHESIZED_JPEG_QUALITY = 95  # every JPEG the tools make from pixels (degraded versions, --reencode) is saved at this


def encode_jpeg(image: Image.Image, quality: int = SYNTHESIZED_JPEG_QUALITY) -> bytes:
    """An RGB picture as JPEG bytes at `quality`."""
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def encoding_of(jpeg: bytes) -> tuple:
    """(quantization tables, chroma subsampling) of a JPEG, read from its header without decoding the pixels."""
    with Image.open(io.BytesIO(jpeg)) as image:
        tables = tuple(tuple(image.quantization[index]) for index in sorted(image.quantization))
        return tables, JpegImagePlugin.get_sampling(image)


def reencode_with(jpeg: bytes, encoding: tuple) -> bytes:
    """The picture of `jpeg` saved again with `encoding`'s quantization tables and subsampling."""
    tables, subsampling = encoding
    with Image.open(io.BytesIO(jpeg)) as image:
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, "JPEG", qtables=[list(table) for table in tables], subsampling=subsampling)
    return buffer.getvalue()
