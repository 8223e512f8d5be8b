"""The tables synthetic athletes are drawn from: cities, sports, names, start hours."""

from __future__ import annotations

from dataclasses import dataclass


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
