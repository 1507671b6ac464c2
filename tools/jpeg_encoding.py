"""A JPEG's encoding (quantization tables, chroma subsampling), and re-encoding a picture with a given one."""
import io

from PIL import Image, JpegImagePlugin


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
