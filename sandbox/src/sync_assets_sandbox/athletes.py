"""Deterministic synthetic Strava athletes: plausible SummaryActivity payloads from a seed.

Same inputs, same output, byte for byte (a `random.Random` per athlete; no wall clock, no
global random state), so a test or a demo can compare what a client stored with what
"Strava" holds. The data carries what real histories carry and clients trip over: a sport mix
led by runs; one to three home bases on several continents with their time zones (daylight
saving time included in `utc_offset` and `start_date_local`); manual entries and indoor
activities without coordinates (`null`, as in Strava's API examples) nor route (a `null`
`summary_polyline`); private activities; activities without heart rate; unicode and emoji
names; power, cadence and gear on some activities only; and a few duplicate uploads that share
their start second with another activity.

Every payload stays within Strava's published SummaryActivity schema (official `sport_type`
and `type` values only), and carries the shapes that schema allows and clients often refuse
(see `_apply_shapes`): `distance` left out on some no-distance sports (yoga, strength,
workouts), `moving_time` above `elapsed_time` on about 0.5% (a device quirk), whole numbers
sent as JSON integers where a float is typed (as Strava's examples show `"max_speed": 11`),
`device_name` on device uploads ("Garmin Forerunner 255", "Zwift", "Strava App"...),
`hide_from_home` flags, and a small share of rarer sport types (Badminton, Pickleball, Padel,
HighIntensityIntervalTraining, Pilates, Elliptical, Rowing...) with their legacy `type`. These
are drawn from a random stream of their own (per athlete, or per activity for a new upload), so
every other value is the one the history had without them.
"""

from __future__ import annotations

import math
import random
import time
import unicodedata
from bisect import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_ID_START = 10_000_000_000  # real Strava ids are past 2**32: clients must use int64
DUPLICATE_UPLOAD_RATE = 0.0025  # each duplicate pairs two activities: ~0.5% share a second


@dataclass(frozen=True)
class City:
    name: str
    state: str
    country: str
    lat: float
    lng: float
    altitude: float  # meters
    tz: str  # IANA name, as in Strava's `timezone` string
    std_offset_hours: int
    dst: str | None  # daylight saving rule: "eu", "us", "au" or none (Brazil's, gone since 2019,
    # is not modelled: São Paulo is UTC-3 throughout)
    language: str
    hills: float  # typical meters climbed per km outdoors


# name | state | country | lat | lng | altitude | tz | std offset | dst rule | language | hills
_CITY_TABLE = """
Paris|Île-de-France|France|48.8566|2.3522|35|Europe/Paris|1|eu|fr|6
Lyon|Auvergne-Rhône-Alpes|France|45.7640|4.8357|173|Europe/Paris|1|eu|fr|12
Berlin|Berlin|Germany|52.5200|13.4050|34|Europe/Berlin|1|eu|de|3
München|Bayern|Germany|48.1351|11.5820|519|Europe/Berlin|1|eu|de|7
London|England|United Kingdom|51.5074|-0.1278|11|Europe/London|0|eu|en|5
Madrid|Comunidad de Madrid|Spain|40.4168|-3.7038|657|Europe/Madrid|1|eu|es|9
Oslo|Oslo|Norway|59.9139|10.7522|23|Europe/Oslo|1|eu|no|14
Boulder|Colorado|United States|40.0150|-105.2705|1655|America/Denver|-7|us|en|22
San Francisco|California|United States|37.7749|-122.4194|16|America/Los_Angeles|-8|us|en|16
São Paulo|São Paulo|Brazil|-23.5505|-46.6333|760|America/Sao_Paulo|-3|-|pt|10
Tokyo|Tokyo|Japan|35.6762|139.6503|40|Asia/Tokyo|9|-|ja|4
Sydney|New South Wales|Australia|-33.8688|151.2093|20|Australia/Sydney|10|au|en|9
Cape Town|Western Cape|South Africa|-33.9249|18.4241|15|Africa/Johannesburg|2|-|en|15
"""


def _rows(table: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("|")] for line in table.strip().splitlines()]


def _city(row: list[str]) -> City:
    name, state, country, lat, lng, alt, tz, off, dst, lang, hills = row
    return City(
        name, state, country, float(lat), float(lng), float(alt), tz, int(off),
        None if dst == "-" else dst, lang, float(hills),
    )  # fmt: skip


CITIES: tuple[City, ...] = tuple(_city(row) for row in _rows(_CITY_TABLE))


@dataclass(frozen=True)
class Sport:
    type: str  # Strava's legacy `type`
    sport_type: str
    weight: float  # share in an average athlete's history
    speed: tuple[float, float]  # m/s, moving
    minutes: tuple[float, float]  # moving time
    gps: bool  # recorded outdoors with coordinates
    climb: float  # times the home's typical m/km
    hr: tuple[float, float]  # average heart rate range
    gear: str | None  # "shoes" | "bike"
    indoor_share: float  # treadmill runs, trainer rides
    pause: float  # typical share of elapsed time spent stopped


# type | sport_type | weight | speed m/s | moving minutes | gps | climb | avg HR | gear |
# indoor share | pause share
_SPORT_TABLE = """
Run            | Run              | 38 | 2.5-4.0  | 20-100 | y | 1.0 | 135-165 | shoes | 0.07 | 0.03
Run            | TrailRun         | 5  | 1.8-3.0  | 40-200 | y | 4.0 | 130-160 | shoes | 0    | 0.08
Ride           | Ride             | 16 | 5.5-9.0  | 40-240 | y | 1.5 | 115-150 | bike  | 0.05 | 0.12
Ride           | GravelRide       | 3  | 4.5-7.5  | 60-240 | y | 2.0 | 115-150 | bike  | 0    | 0.10
Ride           | MountainBikeRide | 3  | 3.0-5.5  | 45-180 | y | 4.0 | 120-160 | bike  | 0    | 0.15
VirtualRide    | VirtualRide      | 7  | 6.5-10.0 | 30-120 | n | 1.0 | 125-160 | bike  | 1    | 0.01
Swim           | Swim             | 6  | 0.6-1.3  | 20-70  | n | 0   | 120-150 | -     | 0    | 0.20
Walk           | Walk             | 8  | 1.1-1.6  | 20-100 | y | 0.8 | 85-110  | shoes | 0    | 0.05
Hike           | Hike             | 4  | 0.7-1.4  | 90-360 | y | 6.0 | 100-135 | shoes | 0    | 0.20
WeightTraining | WeightTraining   | 4  | 0-0      | 30-80  | n | 0   | 95-125  | -     | 0    | 0.10
Yoga           | Yoga             | 2  | 0-0      | 30-75  | n | 0   | 75-95   | -     | 0    | 0.02
Workout        | Workout          | 3  | 0-0      | 20-60  | n | 0   | 110-145 | -     | 0    | 0.10
"""


def _range(cell: str) -> tuple[float, float]:
    lo, hi = cell.split("-")
    return float(lo), float(hi)


def _sport(row: list[str]) -> Sport:
    legacy, sport_type, weight, speed, minutes, gps, climb, hr, gear, indoor, pause = row
    return Sport(
        legacy, sport_type, float(weight), _range(speed), _range(minutes), gps == "y",
        float(climb), _range(hr), None if gear == "-" else gear, float(indoor), float(pause),
    )  # fmt: skip


SPORTS: tuple[Sport, ...] = tuple(_sport(row) for row in _rows(_SPORT_TABLE))
RUN = 0

FIRST_NAMES = {
    "fr": ("Léa", "Chloé", "Amélie", "Julien", "Théo", "François"),
    "de": ("Jonas", "Jürgen", "Lena", "Sören", "Katharina", "Matthias"),
    "en": ("Amelia", "Oliver", "Grace", "Liam", "Zoë", "Noah"),
    "es": ("Sofía", "Álvaro", "Lucía", "Íñigo", "Carmen", "Javier"),
    "no": ("Ingrid", "Øyvind", "Solveig", "Håkon", "Astrid", "Bjørn"),
    "pt": ("João", "Beatriz", "Gonçalo", "Inês", "Thiago", "Luíza"),
    "ja": ("健二", "さくら", "翔太", "美咲", "Kenji", "Yui"),
}
LAST_NAMES = {
    "fr": ("Martin", "Lefèvre", "Dubois", "Bérard", "Moreau"),
    "de": ("Müller", "Schäfer", "Weiß", "Hoffmann", "Groß"),
    "en": ("Smith", "O'Brien", "Taylor", "Nguyen", "Walker-Jones"),
    "es": ("García", "Martínez", "Núñez", "López", "Ortega"),
    "no": ("Berg", "Hansen", "Sæther", "Østby", "Lie"),
    "pt": ("Silva", "Conceição", "Araújo", "Gonçalves", "Souza"),
    "ja": ("田中", "佐藤", "鈴木", "Tanaka", "Watanabe"),
}

# Strava names an activity "<part of day> <sport>" in the athlete's language unless renamed.
PARTS_OF_DAY = {
    "en": ("Night", "Morning", "Lunch", "Afternoon", "Evening"),
    "fr": ("de nuit", "le matin", "le midi", "l'après-midi", "en soirée"),
    "de": ("in der Nacht", "am Morgen", "am Mittag", "am Nachmittag", "am Abend"),
    "es": ("nocturna", "matutina", "al mediodía", "por la tarde", "vespertina"),
    "no": ("om natten", "om morgenen", "i lunsjen", "om ettermiddagen", "om kvelden"),
    "pt": ("noturna", "matinal", "na hora do almoço", "à tarde", "ao entardecer"),
    "ja": ("夜", "朝", "昼", "午後", "夕方"),
}
# sport_type | en | fr | de
_WORDS_1 = """
Run              | Run                | Course à pied | Lauf
TrailRun         | Trail Run          | Trail         | Traillauf
Ride             | Ride               | Sortie vélo   | Radfahrt
GravelRide       | Gravel Ride        | Sortie gravel | Gravelfahrt
MountainBikeRide | Mountain Bike Ride | Sortie VTT    | Mountainbike-Fahrt
VirtualRide      | Virtual Ride       | Vélo virtuel  | Virtuelle Radfahrt
Swim             | Swim               | Natation      | Schwimmen
Walk             | Walk               | Marche        | Spaziergang
Hike             | Hike               | Randonnée     | Wanderung
WeightTraining   | Weight Training    | Musculation   | Krafttraining
Yoga             | Yoga               | Yoga          | Yoga
Workout          | Workout            | Entraînement  | Training
"""
# sport_type | es | no | pt | ja
_WORDS_2 = """
Run              | Carrera              | Løpetur            | Corrida          | ランニング
TrailRun         | Carrera por montaña  | Terrengløp         | Trail run        | トレイルラン
Ride             | Bicicleta            | Sykkeltur          | Pedalada         | ライド
GravelRide       | Bicicleta gravel     | Grussykling        | Pedalada gravel  | グラベルライド
MountainBikeRide | Bicicleta de montaña | Terrengsykling     | Mountain bike    | MTBライド
VirtualRide      | Bicicleta virtual    | Virtuell sykkeltur | Pedalada virtual | バーチャルライド
Swim             | Natación             | Svømming           | Natação          | スイム
Walk             | Caminata             | Gåtur              | Caminhada        | ウォーク
Hike             | Excursión            | Fjelltur           | Trilha           | ハイキング
WeightTraining   | Pesas                | Styrketrening      | Musculação       | 筋トレ
Yoga             | Yoga                 | Yoga               | Ioga             | ヨガ
Workout          | Entrenamiento        | Trening            | Treino           | ワークアウト
"""
SPORT_WORDS: dict[str, dict[str, str]] = {
    lang: {row[0]: row[i] for row in _rows(table)}
    for table, langs in ((_WORDS_1, ("en", "fr", "de")), (_WORDS_2, ("es", "no", "pt", "ja")))
    for i, lang in enumerate(langs, start=1)
}
# Names athletes type themselves, by sport family.
CUSTOM_NAMES = {
    "run": (
        "Course du matin ☀️",
        "Morgenlauf in München",
        "朝ラン",
        "Fractionné 🔥",
        "Long run Sunday 🏃‍♀️",
        "Parkrun PB!!",
        "Corrida da manhã",
        "Rodaje suave por el Retiro",
        "Morgenløp i regnet ☔",
        "皇居ラン 🏯",
        "Tempo Tuesday",
        "Easy 10k 😴",
        "Intervals: 6×800 m",
        "Recovery jog 🐢",
        "Lauf durch den Englischen Garten",
    ),
    "ride": (
        "Lunch Ride 🚲",
        "Radtour am Wochenende",
        "Sortie vélo avec le club 🚴",
        "Pedal no Ibirapuera",
        "Sykkeltur langs fjorden",
        "Coffee ride ☕",
        "サイクリング",
        "Col de la Croix de Fer ⛰️",
        "Commute 🚲",
        "Zwift - Watopia 🌋",
        "Group ride 🍩",
    ),
    "swim": ("Pool swim 🏊", "Natation 2 km", "Open water 🌊", "Schwimmen 50 × 50 m"),
    "walk": (
        "Walk with the dog 🐕",
        "Randonnée dans les Alpes 🏔️",
        "Wanderung über die Höhen",
        "Tur i Nordmarka",
        "Trilha no fim de semana",
        "散歩 🌸",
        "Evening stroll",
    ),
    "gym": (
        "Gym session 💪",
        "Yoga flow 🧘",
        "Core + mobility",
        "Musculation jambes",
        "Krafttraining",
        "筋トレ 💪",
        "CrossFit WOD",
    ),
}
FAMILY = {
    "Run": "run",
    "Ride": "ride",
    "VirtualRide": "ride",
    "Swim": "swim",
    "Walk": "walk",
    "Hike": "walk",
    "WeightTraining": "gym",
    "Yoga": "gym",
    "Workout": "gym",
}
# Local time of day (hours) an activity starts: (weight, earliest, latest).
START_HOURS = (
    (40, 5.5, 9.5),
    (15, 11.5, 13.5),
    (13, 14.0, 17.0),
    (29, 17.0, 21.0),
    (3, 21.0, 23.5),
)


@dataclass(frozen=True)
class SyntheticAthlete:
    """The traits that keep one athlete's activities consistent with each other."""

    athlete_id: int
    seed: int
    homes: tuple[City, ...]
    home_cum_weights: tuple[float, ...]  # for rng.choices(cum_weights=...)
    language: str
    sport_cum_weights: tuple[float, ...]
    pace: float  # multiplies every speed
    hr_offset: float  # bpm added to every average heart rate
    hr_share: float  # share of activities recorded with a heart-rate strap or watch
    power_meter: bool
    shoes: tuple[str, ...]
    bikes: tuple[str, ...]
    firstname: str
    lastname: str
    sex: str
    premium: bool
    custom_name_share: float


def synthetic_athlete(seed: int, athlete_id: int) -> SyntheticAthlete:
    """The athlete behind (seed, athlete_id): homes, sports, fitness, gear, name."""
    rng = random.Random(f"strava-sandbox:{seed}:{athlete_id}:athlete")
    homes = tuple(rng.sample(CITIES, k=rng.choice((1, 1, 2, 2, 3))))
    weights = [
        s.weight * (1.0 if i == RUN else rng.lognormvariate(0, 0.6)) for i, s in enumerate(SPORTS)
    ]
    weights[RUN] = max(weights[RUN], 1.2 * max(weights[1:]))  # runs stay the most common
    language = homes[0].language
    gear_base = rng.randrange(1_000_000, 99_000_000)
    return SyntheticAthlete(
        athlete_id=athlete_id,
        seed=seed,
        homes=homes,
        home_cum_weights=tuple(accumulate((0.8, 0.15, 0.05)[: len(homes)])),
        language=language,
        sport_cum_weights=tuple(accumulate(weights)),
        pace=rng.uniform(0.85, 1.15),
        hr_offset=rng.uniform(-8, 8),
        hr_share=rng.choice((0.0, 0.5, 0.8, 0.95, 0.95)),
        power_meter=rng.random() < 0.4,
        shoes=tuple(f"g{gear_base + i}" for i in range(rng.randint(1, 3))),
        bikes=tuple(f"b{gear_base + 10 + i}" for i in range(rng.randint(1, 2))),
        firstname=rng.choice(FIRST_NAMES[language]),
        lastname=rng.choice(LAST_NAMES[language]),
        sex=rng.choice(("M", "F")),
        premium=rng.random() < 0.3,
        custom_name_share=rng.uniform(0.1, 0.5),
    )


def athlete_profile(
    athlete: SyntheticAthlete, *, created_at: datetime, updated_at: datetime
) -> dict[str, Any]:
    """Strava's SummaryAthlete (resource_state 2) for this athlete."""
    home = athlete.homes[0]
    slug = unicodedata.normalize("NFKD", f"{athlete.firstname}{athlete.lastname}")
    slug = "".join(c for c in slug if c.isascii() and c.isalnum()).lower()
    return {
        "id": athlete.athlete_id,
        "username": f"{slug}{athlete.athlete_id % 1000}" if slug else None,
        "resource_state": 2,
        "firstname": athlete.firstname,
        "lastname": athlete.lastname,
        "bio": None,
        "city": home.name,
        "state": home.state,
        "country": home.country,
        "sex": athlete.sex,
        "premium": athlete.premium,
        "summit": athlete.premium,
        "created_at": iso(created_at),
        "updated_at": iso(updated_at),
        "badge_type_id": 1 if athlete.premium else 0,
        "weight": None,
        "profile_medium": "avatar/athlete/medium.png",
        "profile": "avatar/athlete/large.png",
        "friend": None,
        "follower": None,
    }


def iso(dt: datetime) -> str:
    """Strava's timestamp format: whole seconds with a Z (also for local times)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_epoch(epoch: int) -> str:
    t = time.gmtime(epoch)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z"
    )


# -- time zones -------------------------------------------------------------------------------
_TRANSITIONS: dict[tuple[str, int, int], tuple[int, int]] = {}


def _sunday(year: int, month: int, nth: int) -> date:
    """The nth Sunday of a month (nth=-1: the last one)."""
    if nth > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def _epoch_at(day: date, utc_hour: float) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() + utc_hour * 3600)


def _dst_window(rule: str, year: int, std: int) -> tuple[int, int]:
    """(start, end) epochs of daylight time in `year` (for "au", end is in April, start in Oct)."""
    key = (rule, year, std)
    if key not in _TRANSITIONS:
        if rule == "eu":  # last Sunday of March to last Sunday of October, 01:00 UTC
            window = (_epoch_at(_sunday(year, 3, -1), 1), _epoch_at(_sunday(year, 10, -1), 1))
        elif rule == "us":  # second Sunday of March to first Sunday of November, 02:00 local
            window = (
                _epoch_at(_sunday(year, 3, 2), 2 - std),
                _epoch_at(_sunday(year, 11, 1), 2 - std - 1),
            )
        else:  # "au": first Sunday of October to first Sunday of April, 02:00 standard time
            window = (
                _epoch_at(_sunday(year, 10, 1), 2 - std),
                _epoch_at(_sunday(year, 4, 1), 2 - std),
            )
        _TRANSITIONS[key] = window
    return _TRANSITIONS[key]


def utc_offset_seconds(city: City, epoch: float) -> int:
    """The city's UTC offset at that instant, daylight saving time included."""
    offset = city.std_offset_hours * 3600
    if city.dst is None:
        return offset
    year = time.gmtime(epoch).tm_year
    start, end = _dst_window(city.dst, year, city.std_offset_hours)
    summer = (epoch >= start or epoch < end) if city.dst == "au" else start <= epoch < end
    return offset + 3600 if summer else offset


def timezone_label(city: City) -> str:
    """Strava's `timezone` string, which names the standard offset: "(GMT+01:00) Europe/Paris"."""
    sign = "+" if city.std_offset_hours >= 0 else "-"
    return f"(GMT{sign}{abs(city.std_offset_hours):02d}:00) {city.tz}"


# -- geometry ---------------------------------------------------------------------------------
def encode_polyline(points: list[tuple[float, float]]) -> str:
    """Google's encoded polyline algorithm (precision 5), as in Strava's `summary_polyline`."""
    out: list[int] = []
    prev_lat = prev_lng = 0
    for lat, lng in points:
        ilat, ilng = round(lat * 1e5), round(lng * 1e5)
        _encode_value(ilat - prev_lat, out)
        _encode_value(ilng - prev_lng, out)
        prev_lat, prev_lng = ilat, ilng
    return bytes(out).decode("ascii")


def _encode_value(delta: int, out: list[int]) -> None:
    value = ~(delta << 1) if delta < 0 else delta << 1
    while value >= 0x20:
        out.append((0x20 | (value & 0x1F)) + 63)
        value >>= 5
    out.append(value + 63)


def _route(
    rng: random.Random, lat: float, lng: float, distance: float, loop: bool
) -> list[tuple[float, float]]:
    """A coarse route of about `distance` meters: a loop back to the start, or point to point."""
    n = rng.randint(5, 9)
    step_lat = distance / n / 111_320
    step_lng = step_lat / max(0.2, math.cos(math.radians(lat)))
    bearing = rng.uniform(0, 2 * math.pi)
    turn = (2 * math.pi / n) if loop else 0.0
    points = [(lat, lng)]
    for _ in range(n - 1):
        bearing += turn + rng.uniform(-0.5, 0.5)
        lat += step_lat * math.cos(bearing)
        lng += step_lng * math.sin(bearing)
        points.append((lat, lng))
    if loop:
        points.append(points[0])
    return points


# -- activities -------------------------------------------------------------------------------
def _part_of_day(local_hour: int) -> int:
    if local_hour < 5 or local_hour >= 21:
        return 0
    if local_hour < 11:
        return 1
    if local_hour < 14:
        return 2
    return 3 if local_hour < 17 else 4


def _name(athlete: SyntheticAthlete, rng: random.Random, sport: Sport, local_hour: int) -> str:
    if rng.random() < athlete.custom_name_share:
        return rng.choice(CUSTOM_NAMES[FAMILY[sport.type]])
    lang = athlete.language
    part, word = PARTS_OF_DAY[lang][_part_of_day(local_hour)], SPORT_WORDS[lang][sport.sport_type]
    if lang == "en":
        return f"{part} {word}"
    if lang == "ja":
        return f"{part}の{word}"
    return f"{word} {part}"


def _cum(*weights: float) -> tuple[float, ...]:
    return tuple(accumulate(weights))


def _pick(rng: random.Random, population: Sequence[T], cum_weights: Sequence[float]) -> T:
    """`rng.choices(population, cum_weights=...)[0]`, without its per-call overhead."""
    return population[bisect(cum_weights, rng.random() * cum_weights[-1])]


def make_activity(
    athlete: SyntheticAthlete,
    rng: random.Random,
    *,
    activity_id: int,
    start: datetime | int,
    home: City | None = None,
    sport: Sport | None = None,
) -> dict[str, Any]:
    """One plausible SummaryActivity of this athlete starting at `start` (UTC)."""
    home = home or _pick(rng, athlete.homes, athlete.home_cum_weights)
    sport = sport or _pick(rng, SPORTS, athlete.sport_cum_weights)
    activity = _activity(athlete, rng, _to_epoch(start), home, sport)
    _assign_id(activity, activity_id)
    _apply_shapes(activity, athlete, random.Random(_shapes_seed(athlete, activity_id)))
    return activity


def _to_epoch(start: datetime | int) -> int:
    if isinstance(start, datetime):
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return int(start.timestamp())
    return int(start)


RUN_WORKOUTS, RUN_WORKOUT_CUM = (None, 0, 1, 2, 3), _cum(10, 70, 3, 9, 8)
RIDE_WORKOUTS, RIDE_WORKOUT_CUM = (None, 10, 11, 12), _cum(10, 80, 3, 7)
GROUP_SIZES, GROUP_SIZE_CUM = (1, 2, 3, 6), _cum(85, 8, 4, 3)
PHOTOS, PHOTO_CUM = (0, 1, 2, 4), _cum(80, 10, 6, 4)
DEVICE_IDS = ("garmin_ping_{n}", "garmin_push_{n}", "{n}.fit", "{n}.gpx")
VIRTUAL_DEVICE_IDS = ("zwift-activity-{n}.fit", "{n}.fit", "garmin_ping_{n}")


def _activity(
    athlete: SyntheticAthlete,
    rng: random.Random,
    start: int,
    home: City,
    sport: Sport,
    duration_hint: int | None = None,
) -> dict[str, Any]:
    """The activity without its id (ids are given once the history is sorted)."""
    rand, uniform = rng.random, rng.uniform
    offset = utc_offset_seconds(home, start)
    local_hour = (start + offset) // 3600 % 24
    weekday = ((start + offset) // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
    manual = rand() < 0.03
    indoor = not manual and sport.indoor_share > 0 and rand() < sport.indoor_share
    open_water = sport.sport_type == "Swim" and not manual and rand() < 0.15
    gps = not manual and not indoor and (sport.gps or open_water)
    moving = duration_hint or int(uniform(*sport.minutes) * 60)
    if manual:
        moving = max(600, round(moving / 300) * 300)  # typed in: round numbers
    elapsed = moving if manual else moving + int(moving * sport.pause * uniform(0.2, 1.8))
    speed = uniform(*sport.speed) * athlete.pace * uniform(0.93, 1.07)
    distance = speed * moving
    if sport.sport_type == "Swim" and not open_water:
        distance = round(distance / 25) * 25.0  # pool lengths
    if manual and distance:
        distance = float(max(1000, round(distance / 500) * 500))
    distance = round(distance, 1)
    if gps or sport.sport_type == "VirtualRide":
        climb = sport.climb * (home.hills if gps else 8.0)
        gain = round(distance / 1000 * climb * rng.lognormvariate(0, 0.5), 1)
    else:
        gain = 0.0
    has_hr = not manual and rand() < athlete.hr_share
    private = rand() < 0.06
    workout_type: int | None = None
    if sport.type == "Run":
        workout_type = _pick(rng, RUN_WORKOUTS, RUN_WORKOUT_CUM)
    elif sport.type == "Ride":
        workout_type = _pick(rng, RIDE_WORKOUTS, RIDE_WORKOUT_CUM)
    gear_id: str | None = None
    if not manual and sport.gear == "shoes" and rand() < 0.85:
        gear_id = rng.choice(athlete.shoes)
    elif not manual and sport.gear == "bike" and rand() < 0.9:
        gear_id = rng.choice(athlete.bikes)
    kudos = 0 if private else int(rng.lognormvariate(1.5, 0.9))
    achievements = rng.randint(0, 8) if gps and FAMILY[sport.type] != "swim" else 0
    activity: dict[str, Any] = {
        "resource_state": 2,
        "athlete": {"id": athlete.athlete_id, "resource_state": 1},
        "name": _name(athlete, rng, sport, local_hour),
        "distance": distance,
        "moving_time": moving,
        "elapsed_time": elapsed,
        "total_elevation_gain": gain,
        "type": sport.type,
        "sport_type": sport.sport_type,
        "workout_type": workout_type,
        "id": 0,
        "start_date": _iso_epoch(start),
        "start_date_local": _iso_epoch(start + offset),
        "timezone": timezone_label(home),
        "utc_offset": float(offset),
        "location_city": None,
        "location_state": None,
        "location_country": None,
        "achievement_count": achievements,
        "kudos_count": kudos,
        "comment_count": 0 if private else min(kudos, int(rng.lognormvariate(-0.5, 1.0))),
        "athlete_count": _pick(rng, GROUP_SIZES, GROUP_SIZE_CUM) if gps else 1,
        "photo_count": 0,
        "map": {"id": "", "summary_polyline": None, "resource_state": 2},
        "trainer": indoor,
        "commute": gps
        and sport.type in ("Ride", "Run", "Walk")
        and weekday < 5
        and rand() < (0.15 if sport.type == "Ride" else 0.04),
        "manual": manual,
        "private": private,
        "visibility": "only_me" if private else "followers_only" if rand() < 0.2 else "everyone",
        "flagged": False,
        "gear_id": gear_id,
        "start_latlng": None,  # Strava's examples: null without coordinates
        "end_latlng": None,
        "average_speed": round(distance / moving, 3) if moving else 0.0,
        "max_speed": 0.0 if manual or not distance else round(speed * uniform(1.2, 1.8), 3),
        "has_heartrate": has_hr,
        "heartrate_opt_out": False,
        "display_hide_heartrate_option": has_hr,
        "upload_id": None,
        "upload_id_str": None,
        "external_id": None,
        "from_accepted_tag": False,
        "pr_count": rng.randint(0, achievements) if achievements else 0,
        "total_photo_count": 0 if manual else _pick(rng, PHOTOS, PHOTO_CUM),
        "has_kudoed": False,
    }
    if has_hr:
        avg = uniform(*sport.hr) + athlete.hr_offset
        activity["average_heartrate"] = round(avg, 1)
        activity["max_heartrate"] = float(round(min(205.0, avg + uniform(10, 35))))
    if not manual and sport.type in ("Run", "Walk", "Hike") and rand() < 0.9:
        cadence = uniform(76, 92) if sport.type == "Run" else uniform(50, 60)
        activity["average_cadence"] = round(cadence, 1)
    if not manual and sport.type in ("Ride", "VirtualRide"):
        if sport.sport_type == "VirtualRide" or athlete.power_meter:
            watts = uniform(140, 280) * athlete.pace
            activity["average_cadence"] = round(uniform(75, 95), 1)
            activity["average_watts"] = round(watts, 1)
            activity["max_watts"] = int(watts * uniform(2.0, 4.0))
            activity["weighted_average_watts"] = int(watts * uniform(1.02, 1.12))
            activity["kilojoules"] = round(watts * moving / 1000, 1)
            activity["device_watts"] = True
        elif rand() < 0.6:  # Strava's estimate from speed and climbing
            watts = uniform(100, 200)
            activity["average_watts"] = round(watts, 1)
            activity["kilojoules"] = round(watts * moving / 1000, 1)
            activity["device_watts"] = False
    if gps:
        radius = abs(rng.gauss(0, 3000)) / 111_320
        bearing = uniform(0, 2 * math.pi)
        lat = home.lat + radius * math.cos(bearing)
        lng = home.lng + radius * math.sin(bearing) / math.cos(math.radians(home.lat))
        route = _route(rng, lat, lng, distance, loop=rand() < 0.7)
        activity["start_latlng"] = [round(route[0][0], 2), round(route[0][1], 2)]
        activity["end_latlng"] = [round(route[-1][0], 2), round(route[-1][1], 2)]
        activity["map"]["summary_polyline"] = encode_polyline(route)
        low = round(max(-5.0, home.altitude + rng.gauss(0, 15)), 1)
        activity["elev_low"] = low
        activity["elev_high"] = round(low + gain * uniform(0.15, 0.5), 1)
    if not manual:
        devices = VIRTUAL_DEVICE_IDS if sport.sport_type == "VirtualRide" else DEVICE_IDS
        activity["external_id"] = rng.choice(devices)
    return activity


def _restart(activity: dict[str, Any], home: City, start: int) -> None:
    """Move an activity's start, keeping its local time and offset consistent."""
    offset = utc_offset_seconds(home, start)
    activity["start_date"] = _iso_epoch(start)
    activity["start_date_local"] = _iso_epoch(start + offset)
    activity["utc_offset"] = float(offset)


def _assign_id(activity: dict[str, Any], activity_id: int) -> None:
    activity["id"] = activity_id
    activity["map"]["id"] = f"a{activity_id}"
    if activity["external_id"] is not None:  # uploaded from a device, not typed in
        upload_id = activity_id + 1_234_567_890
        activity["upload_id"] = upload_id
        activity["upload_id_str"] = str(upload_id)
        activity["external_id"] = activity["external_id"].format(n=upload_id * 7 % 10**10)


def default_years(n_activities: int) -> float:
    """History length that grows with the number of activities: 150 a year, 1 to 15 years."""
    return max(1.0, min(15.0, n_activities / 150))


START_HOUR_CUM = _cum(*(w for w, _, _ in START_HOURS))


def generate_activities(
    seed: int,
    athlete_id: int,
    n_activities: int,
    *,
    end: datetime,
    years: float | None = None,
    id_start: int = DEFAULT_ID_START,
) -> list[dict[str, Any]]:
    """`n_activities` activities that all ended before `end`, sorted by (start_date, id).

    Ids start at `id_start` and increase with start time (with small gaps, as Strava's shared id
    sequence has); the caller keeps ranges of different athletes apart.
    """
    if n_activities <= 0:
        return []
    athlete = synthetic_athlete(seed, athlete_id)
    rng = random.Random(f"strava-sandbox:{seed}:{athlete_id}:activities")
    end_epoch = _to_epoch(end)
    span = int(365.25 * 86_400 * (years if years is not None else default_years(n_activities)))
    first_day = (end_epoch - span) // 86_400
    days = max(1, span // 86_400)
    plan: list[tuple[int, City, Sport]] = []
    while len(plan) < n_activities:
        day = first_day + rng.randrange(days + 1)
        if (day + 3) % 7 < 5 and rng.random() < 0.3:
            continue  # fewer activities on weekdays than at weekends
        home = _pick(rng, athlete.homes, athlete.home_cum_weights)
        sport = _pick(rng, SPORTS, athlete.sport_cum_weights)
        _, lo, hi = _pick(rng, START_HOURS, START_HOUR_CUM)
        local = day * 86_400 + int(rng.uniform(lo, hi) * 3600)
        plan.append((local - utc_offset_seconds(home, local), home, sport))
    plan.sort(key=lambda p: p[0])
    drafts: list[dict[str, Any]] = []
    previous: tuple[int, City, Sport, int] | None = None  # start, home, sport, moving time
    for start, home, sport in plan:
        if previous is not None and rng.random() < DUPLICATE_UPLOAD_RATE:
            # A second upload of the same session (another device): the same start second.
            p_start, p_home, p_sport, p_moving = previous
            drafts.append(_activity(athlete, rng, p_start, p_home, p_sport, p_moving))
            continue
        draft = _activity(athlete, rng, start, home, sport)
        latest = end_epoch - draft["elapsed_time"] - 60
        if start > latest:  # it would still be going on at `end`: start it earlier
            start = latest
            _restart(draft, home, start)
        drafts.append(draft)
        previous = (start, home, sport, draft["moving_time"])
    drafts.sort(key=lambda a: a["start_date"])  # stable: ties keep their upload order
    next_id = id_start
    for draft in drafts:
        _assign_id(draft, next_id)
        next_id += 1 if rng.random() < 0.7 else 1 + rng.randrange(4)
    shapes = random.Random(_shapes_seed(athlete))  # a stream of its own: `rng` is untouched
    for draft in drafts:
        _apply_shapes(draft, athlete, shapes)
    return drafts


# -- shapes the official schema allows --------------------------------------------------------
# Sports without a distance: Strava may leave `distance` out of their payloads.
NO_DISTANCE_SPORTS = frozenset({"Yoga", "WeightTraining", "Workout", "Pilates", "Crossfit"})
MISSING_DISTANCE_SHARE = 0.3  # of the activities of those sports
MOVING_ABOVE_ELAPSED_SHARE = 0.005  # device uploads whose moving time exceeds elapsed time
INTEGER_NUMBERS_SHARE = 0.05  # payloads with whole floats written as JSON integers
DEVICE_NAME_SHARE = 0.9  # device uploads naming their device (older uploads do not)
HIDE_FROM_HOME_SHARE = 0.03  # activities muted from the home feed
RARE_SPORT_SHARE = 0.25  # of gym activities (yoga, strength, workouts): rarer sport types
# Official SportType | legacy ActivityType | names athletes give them.
_RARE_SPORT_TABLE = """
Badminton                     | Workout      | Badminton 🏸 / Badminton club
Pickleball                    | Workout      | Pickleball / Pickleball doubles
Padel                         | Workout      | Padel con amigos / Padel 🎾
Tennis                        | Workout      | Tennis / Tennis en salle
Squash                        | Workout      | Squash / Squash ladder
TableTennis                   | Workout      | Ping-pong 🏓 / Tischtennis
HighIntensityIntervalTraining | Workout      | HIIT 🔥 / Tabata 20/10
Pilates                       | Workout      | Pilates / Reformer Pilates
Crossfit                      | Crossfit     | CrossFit WOD / Murph
Elliptical                    | Elliptical   | Elliptical / Crosstrainer
Rowing                        | Rowing       | Indoor rowing / Rameur 2 km
StairStepper                  | StairStepper | Stair climber / StairMaster
RockClimbing                  | RockClimbing | Bouldering 🧗 / Kletterhalle
Dance                         | Workout      | Dance class 💃 / Zumba
"""
RARE_SPORTS: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (sport_type, legacy, tuple(n.strip() for n in names.split(" / ")))
    for sport_type, legacy, names in _rows(_RARE_SPORT_TABLE)
)
# Fields typed `number` (float) whose whole values Strava writes as integers: 11, 0, 178.
FLOAT_FIELDS = (
    "distance", "total_elevation_gain", "average_speed", "max_speed", "average_heartrate",
    "max_heartrate", "average_cadence", "average_watts", "kilojoules", "utc_offset",
    "elev_low", "elev_high",
)  # fmt: skip
WATCHES = ("Garmin Forerunner 255", "Garmin fēnix 7", "COROS PACE 2", "Apple Watch Series 8")
BIKE_COMPUTERS = ("Garmin Edge 1030", "Garmin Edge 530", "Wahoo ELEMNT BOLT")


def _shapes_seed(athlete: SyntheticAthlete, activity_id: int | None = None) -> str:
    base = f"strava-sandbox:{athlete.seed}:{athlete.athlete_id}"
    return f"{base}:shapes" if activity_id is None else f"{base}:{activity_id}:shapes"


@lru_cache(maxsize=4096)
def _devices(seed: int, athlete_id: int) -> tuple[str, str]:
    """The athlete's watch and bike computer (the same ones for years, as athletes do)."""
    rng = random.Random(f"strava-sandbox:{seed}:{athlete_id}:devices")
    return rng.choice(WATCHES), rng.choice(BIKE_COMPUTERS)


def _device_name(athlete: SyntheticAthlete, activity: dict[str, Any]) -> str:
    external_id = activity["external_id"]
    if external_id.startswith("zwift"):
        return "Zwift"
    if external_id.endswith(".gpx"):
        return "Strava App"
    watch, bike_computer = _devices(athlete.seed, athlete.athlete_id)
    return bike_computer if activity["type"] in ("Ride", "VirtualRide") else watch


def _apply_shapes(
    activity: dict[str, Any], athlete: SyntheticAthlete, shapes: random.Random
) -> None:
    """Shapes Strava's schema allows, drawn from `shapes` (not the history's stream)."""
    rand = shapes.random
    gym = activity["sport_type"] in ("Yoga", "WeightTraining", "Workout")
    if gym and rand() < RARE_SPORT_SHARE:
        sport_type, legacy, names = RARE_SPORTS[shapes.randrange(len(RARE_SPORTS))]
        activity.update(sport_type=sport_type, type=legacy, name=shapes.choice(names))
    if (
        activity["sport_type"] in NO_DISTANCE_SPORTS
        and not activity.get("distance")
        and rand() < MISSING_DISTANCE_SHARE
    ):
        del activity["distance"]
    moving = activity["moving_time"]
    if not activity["manual"] and moving >= 60 and rand() < MOVING_ABOVE_ELAPSED_SHARE:
        activity["elapsed_time"] = moving - shapes.randint(1, moving // 10)
    if rand() < INTEGER_NUMBERS_SHARE:
        for name in FLOAT_FIELDS:
            value = activity.get(name)
            if isinstance(value, float) and value.is_integer():
                activity[name] = int(value)
    if activity["external_id"] is not None and rand() < DEVICE_NAME_SHARE:
        activity["device_name"] = _device_name(athlete, activity)
    activity["hide_from_home"] = rand() < HIDE_FROM_HOME_SHARE
