"""Texts shipped with toymodels: a small corpus for harvesting, and contrastive prompt sets.

**The corpus** (`corpus()`, `corpus_path()`): 4,000 English sentences on 12 topics, made by
`generate_corpus()` from templates and word lists written for this project, so it can be shipped
and rebuilt offline. The shipped files `data/corpus.txt` (one sentence a line) and
`data/corpus_topics.txt` (its topic, line for line) are exactly `generate_corpus()`'s output, which a
test checks. It is plain, simple English: enough to see features for topics, places, numbers,
names, tense, negation and questions in a small model, not a substitute for web text.

**Contrastive prompts** (`prompts()`): three sets, `happy`, `angry` and `neutral`, of 48 prompts
each, written for this project. Prompt k of each set describes the same situation in the same
words as far as the emotion allows (the neutral one states the facts), so the sets differ in
emotion rather than topic, length or syntax.

Licence: the templates, word lists, corpus and prompts were written for toymodels and are released
under the project's MIT licence; no third-party text is included.
"""

from __future__ import annotations

import random
from importlib import resources
from pathlib import Path

SETS = ("happy", "angry", "neutral")

NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kemi", "Liam", "Maya", "Nikolai", "Olivia", "Pedro", "Quinn", "Rosa", "Samir", "Tara",
         "Umar", "Vera", "Wei", "Yusuf", "Zoe"]
CITIES = ["Paris", "Tokyo", "Lagos", "Lima", "Oslo", "Cairo", "Toronto", "Mumbai", "Berlin",
          "Nairobi", "Sydney", "Madrid", "Seoul", "Chicago", "Istanbul", "Dublin", "Hanoi",
          "Santiago", "Vienna", "Denver"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
NUMBER_WORDS = ["two", "three", "four", "five", "six", "seven", "eight", "ten", "twelve", "twenty"]

TOPICS: dict[str, tuple[list[str], dict[str, list[str]]]] = {
    "weather": ([
        "It rained all {day} in {city}, and the streets were {wet}.",
        "The forecast for {city} says {weather} tomorrow.",
        "Will it be {weather} in {city} this weekend?",
        "By the afternoon the {sky} had turned {color}.",
        "We stayed inside because of the {storm}.",
        "It was not {weather} at all when we left {city}.",
        "The temperature in {city} dropped to {n} degrees last night.",
        "A {storm} is expected to reach the coast on {day}.",
    ], {
        "wet": ["flooded", "slippery", "empty", "shining", "quiet"],
        "weather": ["sunny", "windy", "cloudy", "foggy", "snowy", "warm", "cold", "stormy"],
        "sky": ["sky", "clouds", "horizon", "light"],
        "color": ["grey", "orange", "dark blue", "pale pink", "almost black"],
        "storm": ["storm", "heavy snow", "thunderstorm", "heat wave", "hail", "strong wind"],
    }),
    "food": ([
        "{name} made {dish} for dinner with {ingredient} from the market.",
        "The recipe calls for {ingredient}, {ingredient2} and a pinch of salt.",
        "Have you ever tried {dish} with {ingredient}?",
        "This {dish} tastes too {taste} for me.",
        "We ordered {dish} and shared it at the table.",
        "Slice the {ingredient} thinly and fry it in olive oil.",
        "{name} does not eat {ingredient}, so we cooked {dish} instead.",
        "The bakery on the corner sells fresh {bread} every morning.",
    ], {
        "dish": ["soup", "pasta", "curry", "a salad", "rice and beans", "an omelette", "stew",
                 "dumplings", "pancakes", "grilled fish"],
        "ingredient": ["tomatoes", "garlic", "onions", "spinach", "mushrooms", "lemons", "carrots",
                       "potatoes", "ginger", "cheese", "peppers", "lentils"],
        "ingredient2": ["butter", "rice", "beans", "eggs", "parsley", "yoghurt", "noodles"],
        "taste": ["salty", "sweet", "spicy", "bitter", "sour", "bland"],
        "bread": ["bread", "croissants", "bagels", "rolls", "flatbread"],
    }),
    "sports": ([
        "{team} won the match {a} to {b} on {day}.",
        "{name} ran {n} kilometres before breakfast.",
        "The {sport} final will be played in {city} in {month}.",
        "Did {team} score in the second half?",
        "The coach told the players to {advice}.",
        "{name} has played {sport} for {n} years.",
        "The referee stopped the game after a {foul}.",
        "Nobody expected {team} to lose at home.",
    ], {
        "team": ["The home team", "The visitors", "Our club", "The national team", "The youth side",
                 "The champions"],
        "a": ["one", "two", "three", "four"],
        "b": ["nil", "one", "two"],
        "sport": ["football", "tennis", "basketball", "cricket", "hockey", "volleyball", "chess"],
        "advice": ["pass the ball more", "defend deeper", "stay calm", "run harder", "keep the shape"],
        "foul": ["hard tackle", "handball", "late challenge", "second yellow card"],
    }),
    "music": ([
        "{name} plays the {instrument} in a small band.",
        "The concert in {city} starts at {hour} o'clock.",
        "This song has a slow {part} and a loud chorus.",
        "Can you play the {instrument} by ear?",
        "The orchestra rehearsed the {piece} for {n} weeks.",
        "{name} wrote the lyrics on the train to {city}.",
        "The old record sounds {quality} on the new speakers.",
        "We could not hear the {instrument} over the drums.",
    ], {
        "instrument": ["guitar", "piano", "violin", "trumpet", "cello", "flute", "drums", "bass"],
        "part": ["verse", "intro", "bridge", "ending"],
        "piece": ["symphony", "concerto", "overture", "new piece", "opening song"],
        "quality": ["warm", "thin", "scratchy", "clear", "muffled"],
    }),
    "animals": ([
        "The {animal} slept in the sun all afternoon.",
        "{name} adopted a {animal} from the shelter.",
        "A {animal} can {ability}.",
        "Why does the {animal} {habit_base} every morning?",
        "We saw {n} {animals} near the river.",
        "The {animal} did not come back to the garden.",
        "Our neighbour's {animal} {habit} when strangers walk by.",
        "Scientists counted the {animals} on the island in {month}.",
    ], {
        "animal": ["cat", "dog", "parrot", "rabbit", "horse", "goat", "owl", "turtle", "fox"],
        "animals": ["deer", "herons", "otters", "wild horses", "foxes", "swans", "seals"],
        "ability": ["see in the dark", "swim for hours", "remember faces", "run very fast",
                    "sleep standing up"],
        "habit": ["barks", "sings", "hides", "waits at the door", "climbs the fence"],
        "habit_base": ["bark", "sing", "hide", "wait at the door", "climb the fence"],
    }),
    "travel": ([
        "{name} took the night train from {city} to {city2}.",
        "Our flight to {city} was delayed by {n} hours.",
        "How long does it take to drive from {city} to {city2}?",
        "We stayed in a small hotel near the {landmark}.",
        "The bus to the {landmark} leaves every {n} minutes.",
        "{name} lost a passport at the airport in {city}.",
        "They did not visit {city} on their last trip.",
        "In {month} the {landmark} is full of tourists.",
    ], {
        "landmark": ["old town", "harbour", "cathedral", "museum", "central station", "castle",
                     "market square"],
    }),
    "science": ([
        "Water boils at {temp} degrees at sea level.",
        "The {scientist} measured the {quantity} of the sample.",
        "Light from the sun takes about eight minutes to reach the Earth.",
        "Does the {quantity} change when the {object} is heated?",
        "The experiment was repeated {n} times to check the result.",
        "A {object} in a vacuum falls at the same rate as a feather.",
        "The {scientist} did not find any {finding} in the data.",
        "Plants turn sunlight, water and carbon dioxide into {product}.",
        "{name} is a {scientist} at the university in {city}.",
        "The {scientist} published the results in {month}.",
        "The {quantity} of the {object} rose by {n} percent.",
        "{name} built a telescope to watch {sky_object}.",
        "Can a {scientist} predict when {event} will happen?",
    ], {
        "temp": ["one hundred"],
        "scientist": ["chemist", "physicist", "biologist", "student", "research team", "engineer"],
        "quantity": ["mass", "temperature", "volume", "pressure", "density", "speed"],
        "object": ["metal ball", "stone", "steel rod", "glass of water", "small magnet"],
        "finding": ["pattern", "effect", "trace of lead", "error", "difference"],
        "product": ["sugar and oxygen"],
        "sky_object": ["the moon", "Jupiter", "the comet", "distant galaxies", "the northern lights"],
        "event": ["an earthquake", "the next eclipse", "a volcanic eruption", "a solar storm"],
    }),
    "technology": ([
        "The {device} stopped working after the update.",
        "{name} wrote a script to {task}.",
        "Did you restart the {device} before calling support?",
        "The new {device} has {n} times more memory than the old one.",
        "Our website went down for {n} minutes on {day}.",
        "The program crashes when the {file} is empty.",
        "{name} does not trust the {device} with any passwords.",
        "Save your work before you close the {app}.",
    ], {
        "device": ["laptop", "phone", "printer", "router", "server", "tablet", "camera"],
        "task": ["rename the photos", "back up the files", "sort the emails", "test the code",
                 "clean the data"],
        "file": ["input file", "config file", "spreadsheet", "log file"],
        "app": ["editor", "browser", "spreadsheet", "terminal"],
    }),
    "money": ([
        "The {item} cost {n} dollars in the shop on the corner.",
        "{name} saved money for {n} months to buy a {item}.",
        "Is the {item} cheaper online?",
        "Prices at the {shop} went up again in {month}.",
        "We paid for the {item} with cash.",
        "{name} did not get a refund for the broken {item}.",
        "The bank closes at {hour} o'clock on {day}.",
        "Rent in {city} is higher than it was last year.",
    ], {
        "item": ["bicycle", "lamp", "coat", "chair", "kettle", "pair of shoes", "rug", "watch"],
        "shop": ["supermarket", "pharmacy", "bakery", "petrol station", "bookshop"],
    }),
    "health": ([
        "{name} went to the doctor because of a {symptom}.",
        "Drink plenty of water when you have a {symptom}.",
        "The clinic in {city} opens at {hour} o'clock.",
        "Does {habit} really help you sleep better?",
        "{name} has been {habit} every day for {n} weeks.",
        "The nurse checked the patient's {measure} twice.",
        "She did not feel well after the {event}.",
        "Regular {habit} lowers the risk of heart disease.",
    ], {
        "symptom": ["fever", "headache", "sore throat", "cough", "back pain", "sprained ankle"],
        "habit": ["walking", "swimming", "stretching", "cycling", "cooking at home", "reading"],
        "measure": ["blood pressure", "temperature", "pulse", "weight"],
        "event": ["long flight", "marathon", "late dinner", "night shift"],
    }),
    "time": ([
        "The meeting was moved from {day} to {day2}.",
        "{name} was born on the {ordinal} of {month}.",
        "The shop is open from {hour} until {hour2} o'clock.",
        "What time does the train leave on {day}?",
        "It has been {n} years since we moved to {city}.",
        "The deadline is the end of {month}.",
        "We did not finish the report before {day}.",
        "The museum is closed every {day} in {month}.",
    ], {
        "ordinal": ["first", "second", "third", "fifth", "tenth", "twelfth", "twentieth",
                    "thirtieth"],
    }),
    "feelings": ([
        "{name} was {emotion} when the letter from {city} arrived.",
        "I feel {emotion} every time I hear that song.",
        "Why are you so {emotion} today?",
        "The children were {emotion} after the long trip.",
        "{name} was not {emotion} about moving to {city}.",
        "Everyone in the room looked {emotion}.",
        "After the phone call {name} felt {emotion} for hours.",
        "It is normal to feel {emotion} before an exam.",
    ], {
        "emotion": ["happy", "sad", "angry", "nervous", "proud", "tired", "relieved", "excited",
                    "lonely", "calm", "confused", "grateful"],
    }),
}

_COMMON = {"name": NAMES, "city": CITIES, "city2": CITIES, "day": DAYS, "day2": DAYS,
           "month": MONTHS, "n": NUMBER_WORDS, "hour": [str(h) for h in range(6, 12)],
           "hour2": [str(h) for h in range(5, 11)]}


def generate_corpus(n: int = 4000, seed: int = 0) -> tuple[list[str], list[str]]:
    """`n` distinct sentences and their topics, topics taken in turn; deterministic in `seed`."""
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    rng = random.Random(seed)
    names = sorted(TOPICS)
    seen: set[str] = set()
    texts, topics = [], []
    tries = 0
    while len(texts) < n:
        topic = names[len(texts) % len(names)]
        templates, slots = TOPICS[topic]
        fill = {k: rng.choice(v) for k, v in {**_COMMON, **slots}.items()}
        text = rng.choice(templates).format(**fill)
        tries += 1
        if tries > 100 * n:
            raise ValueError(f"cannot make {n} distinct sentences from the templates")
        if text in seen:
            continue
        seen.add(text)
        texts.append(text)
        topics.append(topic)
    return texts, topics


def _data(name: str) -> Path:
    return Path(str(resources.files("toymodels.lm") / "data" / name))


def corpus_path() -> Path:
    """The shipped corpus file, one sentence a line (a `texts=` / `--texts` argument as it is)."""
    return _data("corpus.txt")


def corpus() -> list[str]:
    """The shipped corpus: 4,000 sentences (see the module docstring for what and whose)."""
    return corpus_path().read_text(encoding="utf-8").splitlines()


def corpus_topics() -> list[str]:
    """The topic of each corpus sentence, in the same order."""
    return _data("corpus_topics.txt").read_text(encoding="utf-8").splitlines()


def prompts(name: str | None = None) -> dict[str, list[str]] | list[str]:
    """The contrastive prompt sets: {"happy": [...], "angry": [...], "neutral": [...]}, or one set."""
    if name is None:
        return {s: prompts(s) for s in SETS}
    if name not in SETS:
        raise ValueError(f"prompt set {name!r} is not one of {', '.join(SETS)}")
    return _data(f"contrast/{name}.txt").read_text(encoding="utf-8").splitlines()


def _write_corpus() -> None:
    """Rewrite the shipped corpus files from `generate_corpus()` (run: python -m toymodels.lm.texts)."""
    texts, topics = generate_corpus()
    corpus_path().write_text("\n".join(texts) + "\n", encoding="utf-8")
    _data("corpus_topics.txt").write_text("\n".join(topics) + "\n", encoding="utf-8")


if __name__ == "__main__":
    _write_corpus()
