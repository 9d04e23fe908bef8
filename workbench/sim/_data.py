"""Static tables the lead generator draws from: names, streets, and a small geography.

Every value is fake on purpose: e-mail domains are the reserved example.com/.org/.net,
phone numbers use the 555 exchange, IP addresses come from the documentation ranges
(RFC 5737) and social security numbers start with 9, which is never issued.
"""

from __future__ import annotations

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Carlos", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Maria",
    "Donald", "Sandra", "Steven", "Ashley", "Paul", "Kimberly", "Andrew", "Emily", "Joshua",
    "Donna", "Kevin", "Michelle", "Brian", "Carol", "George", "Amanda", "Wei", "Aisha", "Luis",
    "Priya", "Jamal", "Mei", "Omar", "Sofia", "Diego", "Fatima", "Andre", "Keiko", "Tyrone",
    "Rosa", "Hassan", "Ingrid",
)  # fmt: skip

LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Chen", "Patel", "Kim", "Okafor",
    "Schmidt", "Kowalski", "Haddad", "Yamamoto", "Novak", "Ortiz",
)  # fmt: skip

STREETS = (
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Main",
    "Sunset", "Highland", "Jefferson", "River", "Willow", "Lincoln", "Meadow", "Forest",
    "Church", "Spring", "Ridge", "Valley", "Franklin", "Walnut", "Cherry", "Chestnut",
)  # fmt: skip
STREET_SUFFIXES = ("St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl")

EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
IP_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")

#: (city, state, zip prefix (3 digits), area code, population weight, remote)
#: ``remote`` places are where out-of-area leads come from (outside common service areas).
GEOGRAPHY = (
    ("Los Angeles", "CA", "900", "213", 9.0, False),
    ("San Diego", "CA", "921", "619", 4.0, False),
    ("San Jose", "CA", "951", "408", 3.0, False),
    ("Sacramento", "CA", "958", "916", 2.5, False),
    ("Houston", "TX", "770", "713", 6.0, False),
    ("Dallas", "TX", "752", "214", 5.0, False),
    ("Austin", "TX", "787", "512", 4.0, False),
    ("San Antonio", "TX", "782", "210", 3.5, False),
    ("Miami", "FL", "331", "305", 4.5, False),
    ("Orlando", "FL", "328", "407", 3.0, False),
    ("Tampa", "FL", "336", "813", 3.0, False),
    ("Jacksonville", "FL", "322", "904", 2.0, False),
    ("New York", "NY", "100", "212", 6.0, False),
    ("Buffalo", "NY", "142", "716", 1.5, False),
    ("Chicago", "IL", "606", "312", 5.5, False),
    ("Philadelphia", "PA", "191", "215", 3.5, False),
    ("Pittsburgh", "PA", "152", "412", 2.0, False),
    ("Columbus", "OH", "432", "614", 2.5, False),
    ("Cleveland", "OH", "441", "216", 2.0, False),
    ("Atlanta", "GA", "303", "404", 4.0, False),
    ("Charlotte", "NC", "282", "704", 2.5, False),
    ("Raleigh", "NC", "276", "919", 2.0, False),
    ("Detroit", "MI", "482", "313", 2.5, False),
    ("Newark", "NJ", "071", "973", 2.5, False),
    ("Richmond", "VA", "232", "804", 2.0, False),
    ("Seattle", "WA", "981", "206", 2.5, False),
    ("Phoenix", "AZ", "850", "602", 3.5, False),
    ("Boston", "MA", "021", "617", 2.5, False),
    ("Nashville", "TN", "372", "615", 2.0, False),
    ("Indianapolis", "IN", "462", "317", 2.0, False),
    ("Denver", "CO", "802", "303", 2.0, False),
    ("Baltimore", "MD", "212", "410", 2.0, False),
    ("Minneapolis", "MN", "554", "612", 1.8, False),
    ("St. Louis", "MO", "631", "314", 1.8, False),
    ("Portland", "OR", "972", "503", 1.5, False),
    ("Las Vegas", "NV", "891", "702", 1.5, False),
    ("Anchorage", "AK", "995", "907", 1.0, True),
    ("Honolulu", "HI", "968", "808", 1.0, True),
    ("Billings", "MT", "591", "406", 1.0, True),
    ("Fargo", "ND", "581", "701", 1.0, True),
    ("Cheyenne", "WY", "820", "307", 1.0, True),
    ("Burlington", "VT", "054", "802", 1.0, True),
    ("Sioux Falls", "SD", "571", "605", 1.0, True),
)

#: The states a generated lead can come from, in GEOGRAPHY order without repeats.
STATES = tuple(dict.fromkeys(g[1] for g in GEOGRAPHY))

TRUSTEDFORM_URL = "https://cert.trustedform.com/"
