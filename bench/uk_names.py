"""Compact frequency tables of common UK children's given names and surnames.

Relative weights approximate ONS baby-name counts (births 2008-2020, England and Wales) and
surname shares of the population; they are rounded, and only their shape matters: a few
names are very common, so real collisions (two Olivers born the same week) happen.
"""

from __future__ import annotations

BOYS: dict[str, int] = {
    "Oliver": 620, "Jack": 590, "Harry": 560, "George": 480, "Noah": 460, "Charlie": 450,
    "Jacob": 420, "Alfie": 400, "Freddie": 360, "Oscar": 350, "Thomas": 340, "William": 330,
    "James": 320, "Leo": 310, "Joshua": 300, "Henry": 290, "Archie": 280, "Theo": 270,
    "Ethan": 260, "Logan": 250, "Max": 240, "Lucas": 240, "Mohammed": 230, "Muhammad": 230,
    "Isaac": 220, "Daniel": 220, "Samuel": 210, "Joseph": 210, "Alexander": 200, "Arthur": 200,
    "Mason": 190, "Harrison": 190, "Dylan": 180, "Edward": 180, "Benjamin": 170, "Riley": 170,
    "Finley": 160, "Adam": 160, "Teddy": 150, "Sebastian": 150, "Toby": 140, "Lewis": 140,
    "Tyler": 130, "Luke": 130, "Matthew": 130, "Ryan": 120, "Jake": 120, "Jayden": 120,
    "Harvey": 120, "Elijah": 110, "Reggie": 110, "Jude": 100, "Rory": 100, "Tommy": 100,
    "Louie": 100, "Ollie": 95, "Frankie": 95, "Bobby": 90, "Zachary": 90, "Hugo": 90,
    "Jenson": 85, "Albie": 85, "Luca": 80, "Ronnie": 80, "Jackson": 80, "Callum": 75,
    "Kai": 75, "Nathan": 75, "Michael": 70, "Connor": 70, "Aaron": 70, "Liam": 70,
    "Owen": 65, "Jamie": 65, "Caleb": 65, "Stanley": 60, "Elliot": 60, "Blake": 55,
    "Ibrahim": 55, "Yusuf": 55, "Ali": 50, "Omar": 50, "Kacper": 45, "Jakub": 45,
    "David": 45, "Christopher": 40, "Ben": 40, "Sam": 40, "Aarav": 35, "Rhys": 35,
    "Dafydd": 20, "Seán": 20, "Ciarán": 15, "Oisín": 12, "Rafael": 25, "Mateo": 25,
    "Musa": 25, "Hamza": 40, "Zain": 35, "Ayaan": 30, "Arjun": 25, "Kyle": 40,
}

GIRLS: dict[str, int] = {
    "Olivia": 600, "Amelia": 580, "Isla": 470, "Ava": 450, "Emily": 440, "Sophia": 360,
    "Isabella": 350, "Mia": 340, "Poppy": 330, "Ella": 320, "Lily": 320, "Grace": 300,
    "Sophie": 300, "Evie": 290, "Jessica": 280, "Charlotte": 280, "Freya": 270, "Ruby": 260,
    "Daisy": 250, "Chloe": 250, "Alice": 240, "Florence": 220, "Sienna": 210, "Isabelle": 200,
    "Phoebe": 200, "Matilda": 190, "Evelyn": 190, "Millie": 180, "Ivy": 180, "Willow": 170,
    "Ellie": 170, "Harper": 160, "Lucy": 160, "Elsie": 150, "Layla": 150, "Holly": 140,
    "Hannah": 140, "Maisie": 140, "Scarlett": 130, "Esme": 130, "Emilia": 120, "Eva": 120,
    "Rosie": 120, "Erin": 110, "Eliza": 110, "Violet": 110, "Imogen": 100, "Megan": 100,
    "Maya": 100, "Bella": 95, "Aria": 95, "Luna": 90, "Lola": 90, "Molly": 90, "Darcie": 85,
    "Lottie": 85, "Thea": 80, "Harriet": 80, "Georgia": 80, "Amber": 75, "Eleanor": 75,
    "Elizabeth": 75, "Mila": 70, "Hallie": 65, "Orla": 60, "Katie": 60, "Abigail": 60,
    "Rebecca": 55, "Zara": 55, "Aisha": 55, "Fatima": 55, "Maryam": 50, "Amira": 45,
    "Hafsa": 35, "Zainab": 35, "Anaya": 35, "Nia": 35, "Maja": 30, "Zuzanna": 25,
    "Julia": 40, "Lena": 30, "Lexi": 50, "Beatrice": 45, "Edith": 40, "Nancy": 50,
    "Robyn": 35, "Summer": 45, "Niamh": 45, "Zoë": 40, "Zoe": 60, "Chloé": 15, "Siân": 15,
    "Renée": 10, "Ayla": 40, "Elif": 20, "Ana": 25, "Leah": 70, "Lacey": 40, "Tilly": 50,
}

SURNAMES: dict[str, int] = {
    "Smith": 1260, "Jones": 750, "Williams": 600, "Taylor": 500, "Brown": 500, "Davies": 420,
    "Evans": 350, "Wilson": 300, "Thomas": 300, "Johnson": 280, "Roberts": 280,
    "Robinson": 240, "Thompson": 240, "Wright": 230, "Walker": 230, "White": 220,
    "Edwards": 210, "Hughes": 210, "Green": 200, "Hall": 200, "Lewis": 200, "Harris": 190,
    "Clarke": 190, "Patel": 190, "Jackson": 180, "Wood": 180, "Turner": 170, "Martin": 170,
    "Cooper": 170, "Hill": 170, "Ward": 160, "Morris": 160, "Moore": 160, "Clark": 160,
    "Lee": 150, "King": 150, "Baker": 150, "Harrison": 150, "Morgan": 140, "Allen": 140,
    "James": 140, "Scott": 130, "Phillips": 130, "Watson": 130, "Davis": 130, "Parker": 130,
    "Price": 130, "Bennett": 120, "Young": 120, "Griffiths": 120, "Mitchell": 120,
    "Kelly": 120, "Cook": 120, "Carter": 120, "Richardson": 110, "Bailey": 110,
    "Collins": 110, "Bell": 110, "Shaw": 110, "Murphy": 110, "Miller": 110, "Cox": 100,
    "Richards": 100, "Khan": 100, "Marshall": 100, "Anderson": 100, "Simpson": 100,
    "Ellis": 100, "Adams": 100, "Singh": 100, "Begum": 100, "Wilkinson": 95, "Foster": 95,
    "Chapman": 95, "Powell": 90, "Webb": 90, "Rogers": 90, "Gray": 90, "Mason": 90,
    "Ali": 90, "Hunt": 85, "Hussain": 85, "Campbell": 85, "Matthews": 85, "Owen": 85,
    "Palmer": 80, "Holmes": 80, "Mills": 80, "Barnes": 80, "Knight": 80, "Lloyd": 80,
    "Butler": 75, "Russell": 75, "Barker": 75, "Fisher": 75, "Stevens": 75, "Jenkins": 75,
    "Murray": 70, "Dixon": 70, "Harvey": 70, "Graham": 70, "Pearson": 70, "Ahmed": 70,
    "Fletcher": 65, "Walsh": 65, "Kaur": 65, "Gibson": 65, "Howard": 65, "Andrews": 65,
    "Stewart": 60, "Elliott": 60, "Reynolds": 60, "Saunders": 60, "Payne": 60, "Fox": 60,
    "Ford": 58, "Pearce": 58, "Day": 58, "Brooks": 58, "West": 58, "Lawrence": 58,
    "Cole": 55, "Atkinson": 55, "Bradley": 55, "Spencer": 55, "Gill": 55, "Dawson": 55,
    "Ball": 52, "Burton": 52, "O'Brien": 52, "Watts": 52, "Rose": 52, "Booth": 52,
    "Perry": 50, "Ryan": 50, "Grant": 50, "Wells": 50, "Armstrong": 50, "Francis": 50,
    "Rees": 48, "Hayes": 48, "Hart": 48, "Hudson": 48, "Newman": 48, "Barrett": 48,
    "Webster": 45, "Hunter": 45, "Gregory": 45, "Carr": 45, "Lowe": 45, "Page": 45,
    "Marsh": 43, "Riley": 43, "Dunn": 43, "Woods": 43, "Parsons": 43, "Berry": 43,
    "Stone": 40, "Reid": 40, "Holland": 40, "Hawkins": 40, "Harding": 40, "Porter": 40,
    "Robertson": 38, "Newton": 38, "Oliver": 38, "Reed": 38, "Kennedy": 38,
    "Williamson": 38, "Bird": 36, "Gardner": 36, "Shah": 36, "Dean": 36, "Lane": 36,
    "Cooke": 36, "Bates": 34, "Henderson": 34, "Parry": 34, "Burgess": 34, "Bishop": 34,
    "Walton": 34, "Burns": 32, "Nicholson": 32, "Shepherd": 32, "Ross": 32, "Cross": 32,
    "Long": 32, "Freeman": 30, "Warren": 30, "Nicholls": 30, "Hamilton": 30, "Byrne": 30,
    "Sutton": 30, "McDonald": 28, "Yates": 28, "Hodgson": 28, "Robson": 28, "Curtis": 28,
    "Hopkins": 28, "O'Connor": 26, "Harper": 26, "Coleman": 26, "Watkins": 26, "Moss": 26,
    "McCarthy": 26, "Chambers": 25, "O'Neill": 25, "Griffin": 25, "Sharp": 25, "Hardy": 25,
    "Wheeler": 25, "Potter": 24, "Osborne": 24, "Johnston": 24, "Gordon": 24, "Doyle": 24,
    "Wallace": 24, "George": 23, "Jordan": 23, "Hutchinson": 23, "Mahmood": 23, "Rahman": 23,
    "Islam": 22, "Miah": 22, "Akhtar": 22, "Iqbal": 22, "Hussein": 21, "Mohamed": 21,
    "Abdi": 20, "Ibrahim": 20, "Nowak": 20, "Kowalski": 18, "Wiśniewski": 12, "Nguyen": 18,
    "Chen": 18, "Wang": 16, "Zhang": 15, "Kumar": 18, "Sharma": 18, "Das": 15, "Okafor": 15,
    "Mensah": 15, "Adeyemi": 14, "Oyelaran": 8, "Popescu": 12, "Y\u0131lmaz": 10, "Kaya": 10,
    "Silva": 14, "Santos": 14, "Ferreira": 12, "Costa": 12, "Rossi": 10, "Müller": 10,
    "Lopez": 14, "Garcia": 14, "Fernández": 10, "Kovács": 8, "Horváth": 8, "Novak": 10,
    "Pritchard": 20, "Vaughan": 20, "Lambert": 20, "Barton": 20, "Fowler": 20, "Davidson": 20,
    "Hammond": 18, "Stephens": 18, "Frost": 18, "Howells": 16, "Whitehead": 16, "Finch": 16,
    "Connolly": 16, "Thornton": 16, "Holt": 16, "Weston": 16, "Randall": 15, "Brennan": 15,
    "Mellor": 15, "Kirby": 15, "Dyer": 15, "Baxter": 15, "Humphreys": 15, "Jarvis": 15,
    "Goodwin": 14, "Hewitt": 14, "Blake": 14, "Rowe": 14, "Gough": 13, "Tucker": 13,
    "Ahmad": 13, "Hyde": 13, "Birch": 13, "Slater": 13, "Nash": 12, "Fitzgerald": 12, "Łuczak": 4,
}

# Syllables for the long tail of rarer names that no short table covers.
TAIL_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
               "br", "ch", "sh", "th", "tr", "st", "cl", "gr")
TAIL_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ou", "y")
TAIL_CODAS = ("n", "r", "l", "s", "th", "nd", "rt", "m", "ck", "x", "", "", "")

STREET_NAMES = (
    "Oak", "Elm", "Ash", "Birch", "Cedar", "Beech", "Willow", "Maple", "Station", "Church",
    "Mill", "School", "Park", "Victoria", "Queens", "Kings", "Albert", "Manor", "Green",
    "Highfield", "Grange", "Windsor", "York", "Chestnut", "Holly", "Meadow", "Orchard",
    "Springfield", "Valley", "Hill", "Brook", "Bridge", "Castle", "Forest", "Heather",
)
STREET_KINDS = ("Road", "Street", "Avenue", "Lane", "Close", "Drive", "Crescent", "Way",
                "Gardens", "Court", "Place", "Grove")
