#!/usr/bin/env python3
"""Writes items.jsonl beside this script: labelled text for tests/runtime/audit/redactor_test.cpp.

Each line is {"text": ..., "expect": [{"kind": ..., "value": ...}, ...]} where expect lists every span the
redactor must replace (for bearer tokens and key=value secrets: the secret only, not "Bearer " or the key).
Items with an empty expect hold only look-alikes: order numbers, dates, versions, numbers that fail their
checksum, and so on. Values are generated the way issuers make them (Luhn, ISO 7064 mod 97, the CPF and CNPJ
check digits, real JWT headers), English and Portuguese. Deterministic: a fixed seed; run it again after
editing and commit both files.
"""
import base64
import json
import os
import random
import string
import unicodedata
import uuid

R = random.Random(20261203)
B62 = string.ascii_letters + string.digits
B64URL = B62 + "-_"


def pick(xs):
    return R.choice(xs)


def rand(alphabet, n):
    return "".join(R.choice(alphabet) for _ in range(n))


def digits(n):
    return rand(string.digits, n)


def ascii_fold(s):
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode()


# -- checksums ------------------------------------------------------------------------------------------------


def luhn_ok(num):
    total = 0
    for i, ch in enumerate(reversed(num)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def luhn_complete(body):
    for d in string.digits:
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


def iban_check(country, bban):
    moved = bban + country + "00"
    n = int("".join(str(int(c, 36)) for c in moved))
    return "%02d" % (98 - n % 97)


def iban_ok(compact):
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def cpf_digit(ds, first_weight):
    total = sum(int(d) * w for d, w in zip(ds, range(first_weight, 1, -1)))
    r = total * 10 % 11
    return "0" if r == 10 else str(r)


def cpf_complete(nine):
    ten = nine + cpf_digit(nine, 10)
    return ten + cpf_digit(ten, 11)


def cpf_ok(num):
    return len(set(num)) > 1 and cpf_complete(num[:9]) == num


def cnpj_digit(chars, weights):
    total = sum((ord(c) - 48) * w for c, w in zip(chars, weights))
    r = total % 11
    return "0" if r < 2 else str(11 - r)


def cnpj_complete(twelve):
    w1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    w2 = [6] + w1
    thirteen = twelve + cnpj_digit(twelve, w1)
    return thirteen + cnpj_digit(thirteen, w2)


def cnpj_ok(chars):
    return len(set(chars)) > 1 and cnpj_complete(chars[:12]) == chars


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- values ---------------------------------------------------------------------------------------------------

FIRST_EN = ["james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william", "elizabeth",
            "david", "susan", "richard", "jessica", "thomas", "sarah", "emily", "daniel", "olivia", "noah"]
FIRST_PT = ["joão", "maria", "ana", "pedro", "lucas", "juliana", "gabriel", "fernanda", "rafael", "beatriz",
            "carlos", "camila", "mateus", "larissa", "thiago", "aline", "bruno", "patrícia", "felipe", "letícia"]
LAST_EN = ["smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "wilson", "anderson",
           "taylor", "moore", "martin", "lee", "clark", "walker", "hall", "young", "king", "wright"]
LAST_PT = ["silva", "santos", "oliveira", "souza", "rodrigues", "ferreira", "alves", "pereira", "lima", "gomes",
           "costa", "ribeiro", "martins", "carvalho", "almeida", "lopes", "soares", "fernandes", "vieira", "barbosa"]
DOMAINS = ["gmail.com", "outlook.com", "hotmail.com", "yahoo.com.br", "uol.com.br", "bol.com.br", "empresa.com.br",
           "acme-corp.io", "mail.example.co.uk", "contoso.com", "globo.com", "usp.br", "mit.edu", "proton.me",
           "fastmail.fm", "squad-labs.dev", "eng.example.org", "icloud.com", "terra.com.br", "hospital-sp.org.br"]


def person(pt=None):
    pt = R.random() < 0.5 if pt is None else pt
    first = pick(FIRST_PT if pt else FIRST_EN)
    last = pick(LAST_PT if pt else LAST_EN)
    return first, last


def email():
    first, last = (ascii_fold(x) for x in person())
    form = R.randrange(11)
    local = [f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}", f"{first}.{last}+{pick(['news', 'work', 'billing'])}",
             f"{first}.{last}{R.randint(70, 99)}", f"{first}{R.randint(1, 999)}", f"{last}.{first}",
             f"{first.capitalize()}.{last.capitalize()}", f"{first[0]}{last[0]}{R.randint(10, 99)}",
             f"{first}-{last}", f"{first.upper()}.{last.upper()}"][form]
    domain = pick(DOMAINS)
    return f"{local}@{domain.upper() if form == 10 else domain}"


US_AREAS = ["212", "213", "305", "312", "415", "503", "617", "646", "702", "713", "718", "804", "917", "972"]
BR_DDD = ["11", "12", "19", "21", "24", "27", "31", "41", "47", "48", "51", "61", "62", "71", "81", "85", "91", "92"]


def phone():
    kind = R.randrange(27)
    if kind >= 22:
        return [lambda: f"({pick(BR_DDD)}) 9 {digits(4)}-{digits(4)}", lambda: f"+55 {pick(BR_DDD)} 9 {digits(4)}-{digits(4)}",
                lambda: f"+44 (0)20 7946 {digits(4)}", lambda: f"+33 (0){R.randint(1, 7)} " + " ".join(digits(2) for _ in range(4)),
                lambda: f"({pick(US_AREAS)}){R.randint(200, 999)}-{digits(4)}"][kind - 22]()
    ex = str(R.randint(200, 999))
    line = digits(4)
    if kind == 0:
        return f"({pick(US_AREAS)}) {ex}-{line}"
    if kind == 1:
        return f"{pick(US_AREAS)}-{ex}-{line}"
    if kind == 2:
        return f"{pick(US_AREAS)}.{ex}.{line}"
    if kind == 3:
        return f"+1 {pick(US_AREAS)} {ex} {line}"
    if kind == 4:
        return f"+1-{pick(US_AREAS)}-{ex}-{line}"
    if kind == 5:
        return f"+1{pick(US_AREAS)}{ex}{line}"
    if kind == 6:
        return f"1-800-{ex}-{line}"
    mobile = "9" + digits(4)
    land = str(R.randint(2, 5)) + digits(3)
    if kind == 7:
        return f"({pick(BR_DDD)}) {mobile}-{digits(4)}"
    if kind == 8:
        return f"{pick(BR_DDD)} {mobile}-{digits(4)}"
    if kind == 9:
        return f"({pick(BR_DDD)}) {land}-{digits(4)}"
    if kind == 10:
        return f"+55 {pick(BR_DDD)} {mobile}-{digits(4)}"
    if kind == 11:
        return f"+55{pick(BR_DDD)}{mobile}{digits(4)}"
    if kind == 12:
        return f"+55 ({pick(BR_DDD)}) {mobile}-{digits(4)}"
    if kind == 13:
        sep = pick([" ", ".", "-"])
        return "0" + str(R.randint(1, 7)) + "".join(sep + digits(2) for _ in range(4))
    if kind == 14:
        return f"+33 {R.randint(1, 7)} " + " ".join(digits(2) for _ in range(4))
    if kind == 15:
        return pick([f"020 7946 {digits(4)}", f"0161 496 {digits(4)}", f"07700 900{digits(3)}",
                     f"01632 960{digits(3)}", f"0113 496 {digits(4)}"])
    if kind == 16:
        return pick([f"+44 20 7946 {digits(4)}", f"+44 7700 900{digits(3)}", f"+44 161 496 {digits(4)}"])
    if kind == 17:
        return f"+49 30 {digits(8)}"
    if kind == 18:
        return f"+351 9{digits(2)} {digits(3)} {digits(3)}"
    if kind == 19:
        return pick([f"+34 6{digits(2)} {digits(2)} {digits(2)} {digits(2)}", f"+52 55 {digits(4)} {digits(4)}"])
    if kind == 20:
        return pick([f"+91 9{digits(4)} {digits(5)}", f"+81 3-{digits(4)}-{digits(4)}", f"+61 2 9{digits(3)} {digits(4)}"])
    return f"+39 06 {digits(4)} {digits(4)}"


NETWORKS = [("4", 16), ("4", 16), ("4", 13), ("5x", 16), ("2221", 16), ("2720", 16),
            ("34", 15), ("37", 15), ("6011", 16), ("65", 16), ("36", 14), ("3530", 16), ("3589", 16),
            ("6362", 16), ("5067", 16), ("606282", 16), ("62", 19), ("6759", 19), ("4", 19)]


def card_number():
    while True:
        prefix, n = pick(NETWORKS)
        if prefix == "5x":
            prefix = "5" + str(R.randint(1, 5))
        num = luhn_complete(prefix + digits(n - len(prefix) - 1))
        # A plain 14-digit number that is also a valid CNPJ is one (the redactor says CNPJ); skip those.
        if not (n == 14 and cnpj_ok(num)):
            return num


def card_format(num):
    style = R.randrange(4)
    if style == 0 or len(num) == 13:  # 13-digit Visa numbers are printed without groups
        return num
    sep = " " if style in (1, 3) else "-"
    if len(num) == 15:
        return sep.join([num[:4], num[4:10], num[10:]])
    if len(num) == 14:
        return sep.join([num[:4], num[4:10], num[10:]])
    return sep.join(num[i:i + 4] for i in range(0, len(num), 4))


def card():
    return card_format(card_number())


def bban(country):
    up = string.ascii_uppercase
    an = up + string.digits
    return {
        "DE": lambda: digits(18),
        "GB": lambda: rand(up, 4) + digits(14),
        "FR": lambda: digits(10) + rand(string.digits * 3 + up, 11) + digits(2),
        "ES": lambda: digits(20),
        "IT": lambda: rand(up, 1) + digits(10) + rand(an, 12),
        "NL": lambda: rand(up, 4) + digits(10),
        "PT": lambda: digits(21),
        "BE": lambda: digits(12),
        "CH": lambda: digits(5) + rand(string.digits * 3 + up, 12),
        "BR": lambda: digits(23) + rand(up, 1) + rand(an, 1),
        "IE": lambda: rand(up, 4) + digits(14),
        "PL": lambda: digits(24),
        "AT": lambda: digits(16),
        "NO": lambda: digits(11),
        "LU": lambda: digits(3) + rand(an, 13),
    }[country]()


def iban_compact():
    country = pick(["DE", "GB", "FR", "ES", "IT", "NL", "PT", "BE", "CH", "BR", "IE", "PL", "AT", "NO", "LU"])
    b = bban(country)
    return country + iban_check(country, b) + b


def iban_format(compact):
    if R.random() < 0.5:
        return compact
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


def iban():
    return iban_format(iban_compact())


def cpf_number():
    while True:
        nine = digits(9)
        if len(set(nine)) > 1:
            return cpf_complete(nine)


def cpf_format(num):
    if R.random() < 0.65:
        return f"{num[:3]}.{num[3:6]}.{num[6:9]}-{num[9:]}"
    return num


def cpf():
    return cpf_format(cpf_number())


def cnpj_number(alnum=False):
    if alnum:
        twelve = rand(string.ascii_uppercase + string.digits, 8) + rand(string.ascii_uppercase + string.digits, 4)
    else:
        twelve = digits(8) + pick(["0001", "0001", "0002", "0003", "0010"])
    return cnpj_complete(twelve)


def cnpj_format(num, plain_ok=True):
    if plain_ok and R.random() < 0.3:
        return num
    return f"{num[:2]}.{num[2:5]}.{num[5:8]}/{num[8:12]}-{num[12:]}"


def cnpj():
    if R.random() < 0.15:
        return cnpj_format(cnpj_number(alnum=True), plain_ok=False)
    while True:
        num = cnpj_number()
        # A plain CNPJ that is also a Luhn-valid Diners number stays formatted (see card_number).
        return cnpj_format(num, plain_ok=not luhn_ok(num))


def ipv4():
    kind = R.randrange(6)
    if kind == 0:
        return f"10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
    if kind == 1:
        return f"192.168.{R.randint(0, 255)}.{R.randint(1, 254)}"
    if kind == 2:
        return f"172.{R.randint(16, 31)}.{R.randint(0, 255)}.{R.randint(1, 254)}"
    if kind == 3:
        return f"{pick(['203.0.113', '198.51.100', '192.0.2'])}.{R.randint(1, 254)}"
    return ".".join(str(x) for x in [R.randint(1, 223), R.randint(0, 255), R.randint(0, 255), R.randint(1, 254)])


def ipv6():
    kind = R.randrange(6)
    if kind == 0:
        return pick(["::1", "::ffff:192.0.2.128", f"::ffff:10.{R.randint(0, 255)}.{R.randint(0, 255)}.{R.randint(1, 254)}",
                     f"64:ff9b::198.51.100.{R.randint(1, 254)}", "2606:4700:4700::1111", "2001:4860:4860::8888"])
    groups = ["%x" % R.randint(0, 0xFFFF) for _ in range(8)]
    groups[0] = pick(["2001", "2a00", "2804", "fe80", "2600", "2001"])
    if groups[0] == "fe80":
        groups[1:4] = ["0", "0", "0"]
    elif groups[0] == "2001" and R.random() < 0.5:
        groups[1] = "db8"
    if kind == 1:  # full form with leading zeros
        text = ":".join(g.zfill(4) for g in groups)
    else:
        if kind in (2, 3) and groups[0] != "fe80":
            start = R.randint(2, 5)
            for i in range(start, start + R.randint(2, 3)):
                groups[i] = "0"
        # RFC 5952: the longest run of zero groups (two or more) becomes "::".
        best, best_len, i = -1, 1, 0
        while i < 8:
            if groups[i] == "0":
                j = i
                while j < 8 and groups[j] == "0":
                    j += 1
                if j - i > best_len:
                    best, best_len = i, j - i
                i = j
            else:
                i += 1
        if best >= 0:
            text = ":".join(groups[:best]) + "::" + ":".join(groups[best + best_len:])
        else:
            text = ":".join(groups)
    return text.upper() if kind == 5 else text


def opaque_token():
    kind = R.randrange(4)
    if kind == 0:
        return rand(B62, R.randint(24, 48))
    if kind == 1:
        return "ya29.a0" + rand(B64URL, R.randint(60, 120))
    if kind == 2:
        return rand("0123456789abcdef", 40)
    return rand(B64URL + "~+/", R.randint(30, 60)) + pick(["", "=", "=="])


def api_key():
    kind = R.randrange(16)
    return [
        lambda: "sk-or-v1-" + rand("0123456789abcdef", 64),
        lambda: "sk-svcacct-" + rand(B64URL, R.randint(40, 80)),
        lambda: "ASIA" + rand(string.ascii_uppercase + "234567", 16),
        lambda: "sk-proj-" + rand(B64URL, R.randint(48, 100)),
        lambda: "sk-" + rand(B62, 48),
        lambda: "sk-ant-api03-" + rand(B64URL, 93) + "AA",
        lambda: "AKIA" + rand(string.ascii_uppercase + "234567", 16),
        lambda: "ghp_" + rand(B62, 36),
        lambda: pick(["gho_", "ghs_", "ghu_"]) + rand(B62, 36),
        lambda: "github_pat_11" + rand(string.ascii_uppercase + string.digits, 20) + "_" + rand(B62, 59),
        lambda: pick(["xoxb-", "xoxp-"]) + digits(12) + "-" + digits(13) + "-" + rand(B62, 24),
        lambda: "AIza" + rand(B64URL, 35),
        lambda: "gsk_" + rand(B62, 52),
        lambda: "glpat-" + rand(B64URL, 20),
        lambda: "sk_live_" + rand(B62, R.randint(24, 99)),
        lambda: "hf_" + rand(B62, 34),
    ][kind]()


def kv_secret_value():
    kind = R.randrange(4)
    if kind == 0:
        return rand(B62, R.randint(24, 48))
    if kind == 1:
        return rand("0123456789abcdef", pick([32, 40, 64]))
    if kind == 2:
        return rand(B62 + "+/", 40)
    return rand(B64URL, R.randint(20, 40))


def jwt():
    header = pick([{"alg": "HS256", "typ": "JWT"}, {"alg": "RS256", "typ": "JWT", "kid": rand(B64URL, 16)},
                   {"typ": "JWT", "alg": "ES256"}, {"alg": "HS512"}, {"alg": "RS256", "kid": digits(6)}])
    first, last = person()
    payload = {"sub": digits(R.randint(6, 12)), "name": f"{first.capitalize()} {last.capitalize()}",
               "iat": R.randint(1700000000, 1790000000)}
    if R.random() < 0.5:
        payload["email"] = email()
    if R.random() < 0.4:
        payload["roles"] = pick([["admin"], ["user", "billing"], ["reader"]])
    sig_bytes = {"HS256": 32, "HS512": 64, "RS256": 256, "ES256": 64}[header["alg"]]
    enc = lambda o: b64url(json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{enc(header)}.{enc(payload)}.{b64url(R.randbytes(sig_bytes))}"


# -- look-alike fillers (never redacted) -----------------------------------------------------------------------


def date():
    y, m, d = R.randint(2019, 2027), R.randint(1, 12), R.randint(1, 28)
    return pick([f"{y}-{m:02d}-{d:02d}", f"{d:02d}/{m:02d}/{y}", f"{m:02d}/{d:02d}/{y}", f"{d:02d}.{m:02d}.{y}"])


def clock():
    return f"{R.randint(0, 23):02d}:{R.randint(0, 59):02d}" + (f":{R.randint(0, 59):02d}" if R.random() < 0.6 else "")


def order_id():
    return pick([f"PED-{R.randint(2020, 2027)}-{digits(6)}", f"#A{digits(5)}", f"INV-{digits(4)}-{digits(4)}",
                 f"ORD{digits(8)}", f"nº {digits(6)}", f"SO-{digits(7)}"])


def version():
    return pick([f"{R.randint(0, 12)}.{R.randint(0, 30)}.{R.randint(0, 40)}", f"v{R.randint(1, 5)}.{R.randint(0, 20)}.{R.randint(0, 9)}"])


def price():
    return pick([f"R$ {R.randint(1, 9)}.{digits(3)},{digits(2)}", f"US$ {R.randint(10, 999)}.{digits(2)}",
                 f"€{R.randint(1, 99)},{digits(2)}", f"$1,{digits(3)}.{digits(2)}"])


def uid():
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def sha():
    return rand("0123456789abcdef", 40)


def filler(s):
    return s.format(date=date(), time=clock(), order=order_id(), version=version(), price=price(), uuid=uid(),
                    sha=sha(), sha7=sha()[:7], n=R.randint(2, 60))


# -- templates ------------------------------------------------------------------------------------------------

T = {
    "email": [
        "Please send the signed contract to {v} before {date}.",
        "Contact: {v}",
        "Reply-To: {v}",
        "Meu e-mail é {v}, pode mandar o boleto do pedido {order} pra lá.",
        "Oi, sou a cliente do pedido {order}; meu email cadastrado é {v}.",
        "From: \"Support\" <{v}>",
        "User {v} logged in at {time} on {date}.",
        "cc: {v}; please keep the thread under 10 messages",
        "Encaminhe a nota fiscal para {v} até {date}, por favor.",
        "The invoice {order} ({price}) was emailed to {v}.",
        "{{\"user\": {{\"email\": \"{v}\", \"plan\": \"pro\"}}}}",
        "mailto:{v}?subject=Order%20{n}",
        "Can you reset the password for ({v})? Ticket {order}.",
        "Fale com o financeiro: {v}.",
    ],
    "phone": [
        "Call me at {v} after {time}.",
        "Meu telefone é {v}, pode ligar a qualquer hora.",
        "Tel.: {v}",
        "WhatsApp: {v} (só mensagens)",
        "For order {order}, the courier will phone {v} on {date}.",
        "Customer callback number: {v}. Reason: refund of {price}.",
        "Ligue para {v} e informe o protocolo {order}.",
        "Phone {v} - ask for the night shift.",
        "{{\"contact\": {{\"phone\": \"{v}\"}}}}",
        "If the build {version} fails again, page the on-call at {v}.",
        "Meu celular mudou para {v}; o antigo foi desativado em {date}.",
        "Appelez le {v} pour confirmer le rendez-vous.",
    ],
    "card": [
        "My card number is {v}, expiry 08/29.",
        "Cartão: {v} validade 11/27 — pode cobrar {price}.",
        "Please charge {price} to {v}.",
        "Paguei com o cartão {v} mas o pedido {order} não saiu.",
        "card={v}&cvv=***&exp=0428",
        "The customer read out {v} over the phone on {date}.",
        "Número do cartão {v}.",
        "Visa/Master/Amex accepted; yesterday someone pasted {v} into the chat.",
        "{{\"payment\": {{\"pan\": \"{v}\", \"amount\": 1999}}}}",
        "Estorno solicitado para o cartão final? Não, ele mandou o número inteiro: {v}",
    ],
    "iban": [
        "Please wire the deposit to IBAN {v}.",
        "IBAN: {v} (BIC on the invoice {order})",
        "Transfira para o IBAN {v} até {date}.",
        "Refund of {price} goes to {v}, reference {order}.",
        "Beneficiary account {v}.",
        "Kontonummer / IBAN {v} - Verwendungszweck {order}",
        "Meus dados bancários no exterior: {v}",
        "{{\"iban\": \"{v}\", \"currency\": \"EUR\"}}",
    ],
    "cpf": [
        "Meu CPF é {v}.",
        "CPF: {v} — pedido {order}",
        "Nome: {name}, CPF {v}, nascido em {date}.",
        "Para emitir a nota preciso do CPF {v}, confere?",
        "O titular do CPF {v} solicitou a exclusão dos dados.",
        "Customer tax id (CPF) {v} was attached to invoice {order}.",
        "cpf={v}&uf=SP",
        "{{\"cliente\": {{\"cpf\": \"{v}\", \"nome\": \"{name}\"}}}}",
        "Segue o CPF do dependente: {v}",
    ],
    "cnpj": [
        "CNPJ da empresa: {v}",
        "Razão social ACME Ltda., CNPJ {v}, inscrição estadual isenta.",
        "A nota {order} foi emitida para o CNPJ {v} em {date}.",
        "Fornecedor com CNPJ {v} ainda não enviou o boleto de {price}.",
        "Supplier tax id {v} (Brazil) is missing from the PO.",
        "cnpj={v}",
        "{{\"empresa\": {{\"cnpj\": \"{v}\"}}}}",
        "Favor faturar contra o CNPJ {v}.",
    ],
    "ipv4": [
        "Failed login from {v} at {time}.",
        "O servidor {v} parou de responder depois do deploy da versão {version}.",
        "curl http://{v}:8080/health returned 503",
        "Allow SSH from {v} only.",
        "X-Forwarded-For: {v}",
        "host={v} port=5432 dbname=squad",
        "Acesso bloqueado para o IP {v}.",
        "ping {v} -c 4",
        "Route {v}/24 via the VPN gateway.",
        "{{\"client_ip\": \"{v}\", \"status\": 429}}",
        "The DNS for api.internal still points at {v}.",
    ],
    "ipv6": [
        "Failed login from {v} at {time}.",
        "Connect to [{v}]:443 instead.",
        "O cliente conectou pelo endereço IPv6 {v}.",
        "inet6 {v}/64 scope global",
        "curl -g http://[{v}]:8080/healthz",
        "Allow {v} in the firewall.",
        "{{\"remote_addr\": \"{v}\"}}",
        "Bloqueie o IP {v} no WAF.",
        "AAAA record: {v}",
    ],
    "bearer": [
        "Authorization: Bearer {v}",
        "curl -H \"Authorization: Bearer {v}\" https://api.example.com/v1/models",
        "o cabeçalho Authorization: Bearer {v} foi rejeitado com 401",
        "headers = {{'Authorization': 'bearer {v}'}}",
        "Use BEARER {v} for the staging cluster.",
        "{{\"headers\": {{\"authorization\": \"Bearer {v}\"}}}}",
        "Erro 403 em {date} às {time} com o token Bearer {v}.",
        "GET /v1/chat HTTP/1.1\r\nAuthorization: Bearer {v}\r\nAccept: */*",
        "I pasted Bearer {v} into Postman and it worked.",
    ],
    "api_key": [
        "export OPENAI_API_KEY={v}",
        "My key is {v}, why does it return 401?",
        "Minha chave da API é {v} e parou de funcionar.",
        "api_key: {v}",
        "x-api-key: {v}",
        "client = OpenAI(api_key=\"{v}\")",
        "Leaked in the logs on {date}: {v}",
        "ANTHROPIC_API_KEY={v} npm run dev",
        "Rotacione a chave {v} hoje.",
        "The CI printed {v} in step {n}.",
    ],
    "api_key_kv": [
        "api_key={v}",
        "\"client_secret\": \"{v}\"",
        "SECRET_KEY = '{v}'",
        "aws_secret_access_key = {v}",
        "access_token: {v}",
        "senha={v}",
        "Set STRIPE_WEBHOOK_SECRET={v} in the environment.",
        "refresh_token={v}&grant_type=refresh_token",
        "password: {v}",
    ],
    "jwt": [
        "Authorization: Bearer {v}",
        "id_token={v}",
        "Cookie: session={v}; Path=/; HttpOnly",
        "{{\"access_token\": \"{v}\", \"token_type\": \"Bearer\", \"expires_in\": 3600}}",
        "O token {v} expirou às {time}.",
        "Decode this JWT for me: {v}",
        "?token={v}&redirect=/home",
        "The mobile app sent {v} in the header.",
    ],
}

NEGATIVES = [
    # orders, dates, times, prices, versions
    "Order {order} shipped on {date} at {time}.",
    "Pedido {order} entregue em {date}, valor {price}.",
    "Invoice INV-{n}-004512 is due on {date}.",
    "Nota fiscal nº 000.{n}2.456 série 1 emitida em {date}.",
    "Release {version} is out; upgrade from 1.2.3 before {date}.",
    "We pinned numpy to 1.26.4 and node to v20.11.1.",
    "Chrome 120.0.6099.109 and Windows build 10.0.22631.2861 are affected.",
    "The version string 10.0.0.1.2 is invalid.",
    "Upgrade the firmware to version 2.1.0.4 tonight.",
    "[assembly: AssemblyVersion(\"1.0.0.0\")]",
    "The meeting is at {time} on {date}.",
    "Reunião às {time} do dia {date}.",
    "Timestamp 2026-12-03T12:30:45Z, took 12:30:45.123 of CPU.",
    "Total: {price} (tax included), paid on {date}.",
    "Preço promocional {price} até {date}.",
    "Request {uuid} failed at {time}.",
    "Chave PIX aleatória: {uuid}",
    "Fixed in commit {sha} (short {sha7}).",
    "git cherry-pick {sha7} {sha7}",
    "ETag: \"{sha}\"",
    "ISBN 978-3-16-148410-0 and ISBN 9780306406157 are both in the catalogue.",
    "Processo nº 0001234-56.2026.8.26.0100 distribuído em {date}.",
    "CEP 01310-100, São Paulo - SP.",
    "ZIP code 94105-1234.",
    "RG 12.345.678-9 SSP/SP (não é CPF).",
    "Boleto: 34191.79001 01043.510047 91020.150008 1 91070026000",
    "NCM 8471.30.12, CFOP 5.102, alíquota 18%.",
    "Room 415, extension 2671, floor {n}.",
    "Unix time 1733212800 is {date}.",
    "Tracking number 1Z999AA10123456784 is in transit.",
    "IMEI 356938035643809 was reported stolen.",
    "Population grew to 1 234 567 in {n} years.",
    "The score was 3:2:1 after {n} rounds.",
    "Ratio 16:9, frame 00:01:23:45.",
    "Use std::vector<int> and Foo::Bar::baz() here.",
    "MAC address 00:1A:2B:3C:4D:5E belongs to the printer.",
    "Out of range: 256.1.1.1, 999.10.10.10 and 10.0.0.300 are not addresses.",
    "Subnet 192.168.1 is incomplete; 1.2.3.4.5 is not an address either.",
    "The sequence 01.02.03.04 is a date code.",
    "Partial IPv6 2001:db8:1:2:3:4:5:6:7 has nine groups, and 2001::db8::1 two gaps.",
    # bearer in prose
    "The bearer of this card is entitled to one free coffee.",
    "Bearer bonds were popular in the 1980s.",
    "Use Bearer authentication as described in RFC 6750.",
    "Set the header to Bearer <token> and retry.",
    "Authorization: Bearer ${{API_TOKEN}}",
    "Authorization: Bearer YOUR_TOKEN_HERE",
    "WWW-Authenticate: Bearer realm=\"example\", error=\"invalid_token\"",
    "O portador (bearer) do título tem direito ao resgate.",
    "Bearer token expired at {time}; refresh it.",
    "The standard-bearer of the team retired.",
    # e-mail look-alikes
    "Ping @maria.silva and @dev-team on Slack.",
    "Thanks @joao, merged!",
    "Upload icon@2x.png and logo@3x.png.",
    "npm install lodash@4.17.21 @types/node@20.11.0",
    "Send it to user@localhost for now.",
    "Write to name (at) domain dot com.",
    "The pattern a@b.c is not a real address.",
    # card look-alikes
    "Pedido {order}: código de rastreio 7000 1234 5678 9012.",
    "Reference number 1234 5678 9012 3456 7890 on the waybill.",
    # API key look-alikes
    "We use sk-learn style pipelines and task-runner-2026 for batch jobs.",
    "The risk-adjusted score is 0.82.",
    "Keys that start with AKIA are long-term AWS keys.",
    "api_key=YOUR_API_KEY",
    "api_key: ${{OPENAI_API_KEY}}",
    "token=abc123",
    "password: ********",
    "max_tokens=4096, temperature=0.2",
    "secret = os.environ['SECRET']",
    "token_type=Bearer&expires_in=3600",
    "OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "SLACK_BOT_TOKEN=xoxb-your-bot-token",
    "checksum sha256={sha}",
    "request_id={uuid}",
    "A chave é opcional; deixe o campo senha=vazio.",
    # JWT look-alikes
    "JWT headers start with eyJ because they are base64 JSON.",
    "eyJhbGciOi is the start of every HS256 header.",
    "The file archive.tar.gz.sig is signed.",
    "Blob eyJub3QiOiJqd3QifQ is just base64.",
    # plain words and short digit runs
    "Ligue amanhã, o número está no cadastro.",
    "We need 3 servers, 12 cores and 64 GB each.",
    "Agência 0001, conta 12345-6.",
    "Sala 101, bloco B, ramal 2345.",
    # log lines, code and numbers of every other sort
    "Build #20261203.4 passed in 00:03:12.",
    "SELECT * FROM orders WHERE id IN (4111, 5555, 3782) AND created_at > '{date}';",
    "Coordinates -23.5505, -46.6333 (São Paulo); lat/long 40.7128,-74.0060.",
    "The md5 is 5d41402abc4b2a76b9719d911017c592 and sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.",
    "Error code 0x80070005 at offset 0x0040A1F3.",
    "Serial SN-4111-1111-1111-1111 is on the label.",
    "Mac OS X 10.15.7; Android 14; iOS 17.2.1; Python 3.12.1; pip 23.3.1.",
    "Revenue 1,234,567.89 BRL in {n} months.",
    "Crash in main.cpp:123:45 (thread 7).",
    "docker run -p 8080:80 -p 443:443 nginx:1.25.3",
    "Pod web-7d4b9c8f6-x2kqz restarted {n} times.",
    "Event at 2026-12-03T10:15:30+01:00, next at 2026-12-04T10:15:30-03:00.",
    "Temperature +12.5 °C, pressure 1013 hPa, wind +15 km/h.",
    "2^64 = 18446744073709551616",
    "Bitcoin address 1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa (public).",
    "UUID 00000000-0000-0000-0000-000000000000 is the nil UUID.",
    "Version 2026.12.03.1 replaces 2026.11.28.7.",
    "Pi is 3.14159265358979 and e is 2.718281828459045.",
    "Ticket ABC-1234 blocked by DEF-5678.",
    "Hex dump: 00 11 22 33 44 55 66 77 88 99",
    "Chassi 9BWZZZ377VT004251, placa ABC1D23.",
    "Título de eleitor 1234 5678 0191, zona 001.",
    "Cartão SUS 898 0012 3456 7890.",
    "Order 1234-5678-9012-3456 is a reference, not a card.",
    "Card ending in 1111; card **** **** **** 4242.",
    "IBAN: DE** **** **** **** **** 00 (masked).",
    "CPF ***.456.789-** (mascarado).",
    "ip 10.0.0.x is a placeholder.",
    "Invoice 2026/000123, range 1-100 and 200-300.",
    "cURL 8.4.0, OpenSSL 3.0.11, zlib 1.3.",
    "Docs show AKIAXXXXXXXXXXXXXXXX as a placeholder.",
    "secret: /etc/ssl/private/server.key",
    "token: see vault path secret/data/prod/api",
    "Bearer-token authentication is disabled; the Bearer token lives in the vault.",
    "Use the access_token field from the response.",
    "api_key_version=2",
    "Phone: +55 (11) ____-____ (preencher).",
    "Score went from 3.2.1 to 4.0.0 after {n} runs.",
    "Meeting room 3.14 on floor 2 at {time}.",
    "adwaita-icon-theme (3.16.2.1-2) unstable; urgency=medium",
    "binutils (2.10.0.27-0.cvs20001011.2) unstable; urgency=low",
    "See section 23.2.3.1 of the standard and clause 21.1.3.1; conforme o artigo 5.1.2.3.",
    "Updated Standards-Version to 3.9.8.0 (no changes); policy 3.6.1.1.",
    "llvm-toolchain-snapshot (1:10~+20191229111838+6991d5728f1-1~exp1) experimental",
    "const client = new OpenAI({{ apiKey: process.env.SQUAD_KEY }});",
    "token: AuthenticationSchemeName",
]


def neg_card_luhn():
    while True:
        num = card_number()
        bad = num[:-1] + str((int(num[-1]) + R.randint(1, 9)) % 10)
        if not (len(bad) == 14 and cnpj_ok(bad)):  # a valid CNPJ is one whatever the context says
            return card_format(bad)


def neg_iban():
    c = iban_compact()
    i = R.randrange(4, len(c))
    ch = c[i]
    alt = pick([d for d in string.digits if d != ch]) if ch.isdigit() else pick([u for u in string.ascii_uppercase if u != ch])
    bad = c[:i] + alt + c[i + 1:]
    assert not iban_ok(bad)
    return iban_format(bad)


def neg_cpf():
    if R.random() < 0.2:
        d = str(R.randint(0, 9))
        return cpf_format(d * 11)
    num = cpf_number()
    bad = num[:-2] + "%02d" % ((int(num[-2:]) + R.randint(1, 98)) % 100)
    assert not cpf_ok(bad)
    return cpf_format(bad)


def neg_cnpj():
    if R.random() < 0.2:
        d = str(R.randint(0, 9))
        return cnpj_format(d * 14)
    while True:
        num = cnpj_number()
        bad = num[:-2] + "%02d" % ((int(num[-2:]) + R.randint(1, 98)) % 100)
        assert not cnpj_ok(bad)
        if not luhn_ok(bad):  # plain, a Luhn-valid 14-digit number starting 36 or 38 is a Diners card
            return cnpj_format(bad)


def neg_order_number():
    # Long order numbers fail Luhn or have no issuer (plain digit runs are cards only when Luhn-valid).
    while True:
        n = R.choice([13, 16, 19])
        num = str(R.randint(1, 9)) + digits(n - 1)
        if not luhn_ok(num):
            return num


def neg_protocol():
    while True:
        num = "2026" + digits(7)
        if not cpf_ok(num):
            return num


NEG_CHECKSUM = [
    ("Cartão {x} recusado: número inválido.", neg_card_luhn),
    ("The card {x} failed validation (typo?).", neg_card_luhn),
    ("IBAN {x} was rejected by the bank: checksum error.", neg_iban),
    ("O IBAN {x} está com dígito verificador errado.", neg_iban),
    ("CPF {x} inválido, confira os dígitos.", neg_cpf),
    ("The form rejected CPF {x}.", neg_cpf),
    ("CNPJ {x} não confere com a Receita.", neg_cnpj),
    ("Supplier CNPJ {x} is invalid.", neg_cnpj),
    ("Order number {x} is on the packing slip.", neg_order_number),
    ("Pedido {x} aguardando pagamento.", neg_order_number),
    ("Protocolo de atendimento {x}.", neg_protocol),
]


def positive(kind):
    if kind == "api_key" and R.random() < 0.35:
        tmpl = pick(T["api_key_kv"])
        value = kv_secret_value()
    else:
        tmpl = pick(T[kind])
        value = {"email": email, "phone": phone, "card": card, "iban": iban, "cpf": cpf, "cnpj": cnpj,
                 "ipv4": ipv4, "ipv6": ipv6, "bearer": opaque_token, "api_key": api_key, "jwt": jwt}[kind]()
    first, last = person(pt=True)
    name = f"{first.capitalize()} {last.capitalize()}"
    text = filler(tmpl.replace("{v}", "\x00").replace("{name}", name)).replace("\x00", value)
    return {"text": text, "expect": [{"kind": kind, "value": value}]}


MIXED = [
    ("Cliente {name}, CPF {cpf}, e-mail {email}, celular {phone}.", ["cpf", "email", "phone"]),
    ("Customer {email} paid with {card} from IP {ipv4}.", ["email", "card", "ipv4"]),
    ("Empresa CNPJ {cnpj}, contato {email}, tel {phone}.", ["cnpj", "email", "phone"]),
    ("curl -H 'Authorization: Bearer {bearer}' -H 'X-Forwarded-For: {ipv4}' https://api.example.com", ["bearer", "ipv4"]),
    ("Login of {email} from {ipv6} with token {jwt}", ["email", "ipv6", "jwt"]),
    ("Refund to {iban} for {email}; call {phone} if it bounces.", ["iban", "email", "phone"]),
    ("OPENAI_API_KEY={api_key} leaked from host {ipv4} by {email}", ["api_key", "ipv4", "email"]),
    ("Dados: {name} / CPF {cpf} / cartão {card} / IBAN {iban}", ["cpf", "card", "iban"]),
    ("Headers: Authorization: Bearer {jwt}; X-Real-IP: {ipv4}", ["jwt", "ipv4"]),
    ("Peers {ipv4} and {ipv6} both sent Bearer {bearer}", ["ipv4", "ipv6", "bearer"]),
    ("Allow the range {ipv4}-{ipv4#2} on port 443.", ["ipv4", "ipv4#2"]),
    ("Contatos: {phone} ou {phone#2}; e-mails {email} e {email#2}.", ["phone", "phone#2", "email", "email#2"]),
    ("Two cards on file: {card} and {card#2}.", ["card", "card#2"]),
]


def mixed():
    tmpl, kinds = pick(MIXED)
    gen = {"email": email, "phone": phone, "card": card, "iban": iban, "cpf": cpf, "cnpj": cnpj, "ipv4": ipv4,
           "ipv6": ipv6, "bearer": opaque_token, "api_key": api_key, "jwt": jwt}
    values = {slot: gen[slot.split("#")[0]]() for slot in kinds}
    first, last = person(pt=True)
    text = tmpl.replace("{name}", f"{first.capitalize()} {last.capitalize()}")
    for slot in kinds:
        text = text.replace("{" + slot + "}", values[slot])
    return {"text": text, "expect": [{"kind": slot.split("#")[0], "value": values[slot]} for slot in kinds]}


def main():
    items = []
    kinds = ["email", "phone", "card", "iban", "cpf", "cnpj", "ipv4", "ipv6", "bearer", "api_key", "jwt"]
    for kind in kinds:
        for _ in range(55):
            items.append(positive(kind))
    for _ in range(70):
        items.append(mixed())
    for tmpl in NEGATIVES:
        for _ in range(2 if "{" in tmpl else 1):
            items.append({"text": filler(tmpl), "expect": []})
    for tmpl, gen in NEG_CHECKSUM:
        for _ in range(8):
            items.append({"text": tmpl.replace("{x}", gen()), "expect": []})
    seen = set()
    items = [i for i in items if not (i["text"] in seen or seen.add(i["text"]))]
    R.shuffle(items)
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "items.jsonl"), "w", encoding="utf-8") as out:
        for item in items:
            out.write(json.dumps(item, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
