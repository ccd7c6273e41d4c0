"""The wire layout of Envoy's ext_authz v3 Check, written and read by hand:
an encoder for CheckRequest and a decoder for CheckResponse that share no code
with clovis (no generated code either), used by the tests and by the test
proxy (mini_envoy.py) as an independent client. Field numbers: docs/ENVOY.md.
"""
import struct

CHECK = "/envoy.service.auth.v3.Authorization/Check"


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_varint(num, value):
    return varint(num << 3) + varint(value)


def field_bytes(num, data):
    if isinstance(data, str):
        data = data.encode()
    return varint(num << 3 | 2) + varint(len(data)) + data


def peer(address, port):
    # Peer.address(1) -> Address.socket_address(1) -> {address(2), port_value(3)}
    return field_bytes(1, field_bytes(1, field_bytes(2, address) + field_varint(3, port)))


def check_request(src, sport, dst, dport, host="video.example.com:8000", path="/", method="GET", headers=None,
                  raw_headers=None):
    """raw_headers: [(name, value)] sent as Envoy 1.30+ does with encode_raw_headers: true, in
    HttpRequest.header_map (13) -> HeaderMap.headers (1) -> {key=1, raw_value=3 (bytes)}."""
    http = field_bytes(2, method) + field_bytes(4, path) + field_bytes(5, host)
    for k, v in (headers or {}).items():  # map<string,string> headers = 3: entries {key=1, value=2}
        http += field_bytes(3, field_bytes(1, k) + field_bytes(2, v))
    if raw_headers:
        http += field_bytes(13, b"".join(field_bytes(1, field_bytes(1, k) + field_bytes(3, v))
                                         for k, v in raw_headers))
    attrs = (field_bytes(1, peer(src, sport)) + field_bytes(2, peer(dst, dport)) +
             field_bytes(4, field_bytes(2, http)))  # request(4) -> http(2)
    return field_bytes(1, attrs)  # CheckRequest.attributes = 1


def parse(data):
    """{field number: [values]}: ints for varints/fixed, bytes for length-delimited."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 1:
            v, i = data[i:i + 8], i + 8
        elif wt == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        elif wt == 5:
            v, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def read_varint(data, i):
    n = shift = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def struct_value(v):
    """google.protobuf.Value -> python."""
    f = parse(v)
    if 2 in f:
        return struct.unpack("<d", f[2][0])[0]
    if 3 in f:
        return f[3][0].decode()
    if 4 in f:
        return bool(f[4][0])
    if 5 in f:
        return struct_fields(f[5][0])
    return None


def struct_fields(s):
    return {parse(e)[1][0].decode(): struct_value(parse(e).get(2, [b""])[0]) for e in parse(s).get(1, [])}


def header_options(hvos):
    """repeated HeaderValueOption -> {key: value}: header(1) -> HeaderValue {key=1, value=2}."""
    headers = {}
    for hvo in hvos:
        h = parse(hvo)
        kv = parse(h[1][0])
        headers[kv[1][0].decode()] = kv.get(2, [b""])[0].decode()
    return headers


def check_response(data):
    """CheckResponse: status(1) = google.rpc.Status {code=1}; the http_response oneof:
    denied_response(2) = DeniedHttpResponse {status=1: envoy.type.v3.HttpStatus {code=1},
    headers=2, body=3} or ok_response(3) = OkHttpResponse {headers=2, headers_to_remove=5};
    dynamic_metadata(4). "denied" is None unless field 2 is there."""
    r = parse(data)
    status = parse(r[1][0]) if 1 in r else {}
    ok = parse(r[3][0]) if 3 in r else {}
    denied = None
    if 2 in r:
        d = parse(r[2][0])
        http_status = parse(d[1][0]) if 1 in d else {}
        denied = {"status": http_status.get(1, [0])[0], "headers": header_options(d.get(2, [])),
                  "body": d.get(3, [b""])[0].decode()}
    md = struct_fields(r[4][0]) if 4 in r else {}
    return {"code": status.get(1, [0])[0], "ok": 3 in r, "headers": header_options(ok.get(2, [])),
            "remove": [x.decode() for x in ok.get(5, [])], "denied": denied, "metadata": md}
