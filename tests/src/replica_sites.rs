//! The task benchmark's sites, written for it: an encyclopedia (articles with an infobox, a
//! lead full of links, sections, "See also", references and a navigation box; a front page
//! with a search box and a results page), a table of language models with an article per
//! model, a news aggregator laid out in tables as older sites are (two pages of stories and a
//! comment thread), and a sign-up form with its welcome page. Pages are built here, served
//! from memory on 127.0.0.1, and carry the facts the tasks' answers are checked against.
//!
//! Plain data: [`page`] maps a request path to HTML. It must not do I/O.

/// A story of the aggregator: title, site, points, user, hours ago, comments.
struct Story {
    title: &'static str,
    site: &'static str,
    comments: u32,
}

const STORIES: [Story; 30] = [
    Story {
        title: "Comet seen over the bay",
        site: "sky.example",
        comments: 45,
    },
    Story {
        title: "A new rocket engine passes its first test",
        site: "rockets.example",
        comments: 12,
    },
    Story {
        title: "Why orbits are ellipses",
        site: "physics.example",
        comments: 30,
    },
    Story {
        title: "Show: a pocket planetarium in the terminal",
        site: "code.example",
        comments: 8,
    },
    Story {
        title: "The quiet return of slide rules",
        site: "tools.example",
        comments: 61,
    },
    Story {
        title: "How tides keep time",
        site: "sea.example",
        comments: 4,
    },
    Story {
        title: "Mapping the Kuiper belt with amateur scopes",
        site: "sky.example",
        comments: 27,
    },
    Story {
        title: "Ask: what got you into astronomy?",
        site: "news.example",
        comments: 203,
    },
    Story {
        title: "A field guide to meteor showers",
        site: "sky.example",
        comments: 16,
    },
    Story {
        title: "Rust on a weather balloon",
        site: "code.example",
        comments: 39,
    },
    Story {
        title: "The longest known comet tail",
        site: "physics.example",
        comments: 22,
    },
    Story {
        title: "Lunar dust is sharper than glass",
        site: "moon.example",
        comments: 18,
    },
    Story {
        title: "Building an observatory shed",
        site: "diy.example",
        comments: 11,
    },
    Story {
        title: "What the Oort cloud might look like",
        site: "sky.example",
        comments: 57,
    },
    Story {
        title: "Satellites and the night sky",
        site: "news.example",
        comments: 94,
    },
    Story {
        title: "Solar sails, explained",
        site: "rockets.example",
        comments: 33,
    },
    Story {
        title: "An atlas of dark sky parks",
        site: "travel.example",
        comments: 9,
    },
    Story {
        title: "The maths of gravity assists",
        site: "physics.example",
        comments: 25,
    },
    Story {
        title: "Launch: a star chart for phones",
        site: "code.example",
        comments: 14,
    },
    Story {
        title: "Why Mars is red",
        site: "sky.example",
        comments: 41,
    },
    Story {
        title: "Keeping a telescope collimated",
        site: "diy.example",
        comments: 7,
    },
    Story {
        title: "The history of the planetarium",
        site: "tools.example",
        comments: 19,
    },
    Story {
        title: "A year of aurora photographs",
        site: "photo.example",
        comments: 66,
    },
    Story {
        title: "Radio astronomy on a budget",
        site: "diy.example",
        comments: 28,
    },
    Story {
        title: "How comets get their names",
        site: "sky.example",
        comments: 35,
    },
    Story {
        title: "Saturn's rings are young",
        site: "physics.example",
        comments: 50,
    },
    Story {
        title: "The lost art of star navigation",
        site: "sea.example",
        comments: 21,
    },
    Story {
        title: "A tiny spectrograph you can print",
        site: "code.example",
        comments: 13,
    },
    Story {
        title: "Listening to meteors on FM radio",
        site: "diy.example",
        comments: 10,
    },
    Story {
        title: "Where the Voyagers are now",
        site: "news.example",
        comments: 88,
    },
];

/// Stories per page of the aggregator.
const STORIES_PER_PAGE: usize = 15;

/// The comment thread of the first story: (user, depth, text).
const COMMENTS: [(&str, usize, &str); 8] = [
    (
        "ada",
        0,
        "The tail pointed away from the Sun, as predicted.",
    ),
    ("lin", 1, "It always does: the solar wind pushes it."),
    ("sam", 2, "Two tails, in fact: one of dust, one of ions."),
    ("kit", 0, "I saw it from the pier at nine, low in the west."),
    ("ada", 1, "Same here, binoculars helped a lot."),
    ("joe", 0, "Does anyone know its orbital period?"),
    ("lin", 1, "Roughly 2,500 years, by the first estimates."),
    ("max", 0, "Lovely photos in the article."),
];

/// An encyclopedia article.
struct Article {
    title: &'static str,
    /// The lead paragraph's HTML (its links included).
    lead: &'static str,
    infobox: &'static [(&'static str, &'static str)],
    sections: &'static [(&'static str, &'static [&'static str])],
    see_also: &'static [&'static str],
}

const COMET: Article = Article {
    title: "Comet",
    lead: "A <b>comet</b> is an <a href=\"/wiki/Ice\">icy</a>, <a href=\"/wiki/Small_Solar_System_body\">small Solar System body</a> that, when passing close to the <a href=\"/wiki/Sun\">Sun</a>, warms and begins to release gases, a process called <a href=\"/wiki/Outgassing\">outgassing</a>. This produces an extended, gravitationally unbound atmosphere or <a href=\"/wiki/Coma_(cometary)\">coma</a> surrounding the nucleus, and sometimes a <a href=\"/wiki/Comet_tail\">tail</a> of gas and dust.",
    infobox: &[("Type", "Small Solar System body"), ("Nucleus size", "0.1 to 40 km"), ("Known", "4,584 (as of 2024)")],
    sections: &[
        ("Physical characteristics", &["Nucleus of a comet", "Coma (cometary)", "Ion tail", "Dust tail", "Antitail", "Jets and outbursts"]),
        ("Orbital characteristics", &["Short period comets and their origin", "Long period comets from the Oort cloud", "Single-apparition or non-periodic comets", "Sungrazing comet", "Near-Earth object"]),
        ("History of study", &["Early observations and thought", "Orbital studies by Edmond Halley", "Studies of physical characteristics", "Spacecraft missions to comets"]),
    ],
    see_also: &["List of comets by type", "List of periodic comets", "List of non-periodic comets", "Great Comet", "Extinct comet", "Lost comet"],
};

const OORT_CLOUD: Article = Article {
    title: "Oort cloud",
    lead: "The <b>Oort cloud</b> is a theoretical <a href=\"/wiki/Cloud\">cloud</a> of predominantly icy <a href=\"/wiki/Planetesimal\">planetesimals</a> proposed to surround the <a href=\"/wiki/Sun\">Sun</a> at distances ranging from 2,000 to 200,000 <a href=\"/wiki/Astronomical_unit\">AU</a>. It was named after the Dutch astronomer <a href=\"/wiki/Jan_Oort\">Jan Oort</a>, who proposed it in 1950.",
    infobox: &[("Inner edge", "2,000 AU"), ("Outer edge", "200,000 AU"), ("Objects", "Perhaps billions")],
    sections: &[
        ("Hypothesis", &["Ernst Öpik", "Long-period comet", "Comet nucleus"]),
        ("Structure and composition", &["Hills cloud", "Inner Oort cloud", "Outer Oort cloud", "Tidal effects"]),
        ("Exploration", &["Interstellar probe", "New Horizons", "Voyager program"]),
    ],
    see_also: &["Detached object", "Sednoid", "List of possible dwarf planets", "Nemesis (hypothetical star)"],
};

/// The models table: (model, organisation, context, released).
const MODELS: [(&str, &str, &str, &str); 6] = [
    ("Alpha", "North Lab", "8k", "2023"),
    ("Beta", "South Lab", "32k", "2023"),
    ("Gamma", "North Lab", "128k", "2024"),
    ("Delta", "East Works", "1M", "2024"),
    ("Epsilon", "West Institute", "200k", "2025"),
    ("Zeta", "South Lab", "64k", "2025"),
];

const NAVBOX: [&str; 14] = [
    "Mercury",
    "Venus",
    "Earth",
    "Mars",
    "Jupiter",
    "Saturn",
    "Uranus",
    "Neptune",
    "Pluto",
    "Ceres",
    "Eris",
    "Haumea",
    "Makemake",
    "Heliosphere",
];

fn wiki_href(title: &str) -> String {
    format!("/wiki/{}", title.replace(' ', "_"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n{body}\n</body></html>\n",
        escape(title)
    )
}

/// The encyclopedia's header: its name, the search box, the personal links.
fn wiki_header() -> &'static str {
    "<header><a href=\"/wiki/Main_Page\">Open Encyclopedia</a>\
     <form role=\"search\" action=\"/search\"><input type=\"search\" name=\"q\" aria-label=\"Search Open Encyclopedia\"><button>Search</button></form>\
     <nav aria-label=\"Personal tools\"><a href=\"/login\">Log in</a> <a href=\"/create\">Create account</a></nav></header>"
}

fn wiki_footer() -> String {
    let links: String = NAVBOX
        .iter()
        .map(|n| format!("<li><a href=\"{}\">{n}</a></li>", wiki_href(n)))
        .collect();
    format!(
        "<footer><nav aria-label=\"Solar System\"><h2>The Solar System</h2><ul>{links}</ul></nav>\
         <p>Text is available under an open licence; additional terms may apply.</p>\
         <a href=\"/privacy\">Privacy policy</a> <a href=\"/about\">About Open Encyclopedia</a></footer>"
    )
}

fn article_page(a: &Article) -> String {
    let contents: String = a
        .sections
        .iter()
        .map(|(s, _)| *s)
        .chain(["See also", "References"])
        .map(|s| format!("<li><a href=\"#{}\">{s}</a></li>", s.replace(' ', "_")))
        .collect();
    let infobox: String = a
        .infobox
        .iter()
        .map(|(k, v)| format!("<tr><th>{k}</th><td>{v}</td></tr>"))
        .collect();
    let sections: String = a
        .sections
        .iter()
        .map(|(s, links)| {
            let items: String = links
                .iter()
                .map(|l| {
                    format!(
                        "<li><a href=\"{}\">{l}</a>: a short account of {}.</li>",
                        wiki_href(l),
                        l.to_lowercase()
                    )
                })
                .collect();
            format!(
                "<section><h2 id=\"{}\">{s}</h2><p>This section describes the {} of the subject as astronomers have studied it over the centuries.</p><ul>{items}</ul></section>",
                s.replace(' ', "_"),
                s.to_lowercase()
            )
        })
        .collect();
    let see_also: String = a
        .see_also
        .iter()
        .map(|l| format!("<li><a href=\"{}\">{l}</a></li>", wiki_href(l)))
        .collect();
    let references: String = (1..=8)
        .map(|i| {
            format!(
                "<li><a href=\"https://journal.example/{}/{i}\">{} in the literature, part {i}: a survey of studies since {}</a> Retrieved 12 March 2024.</li>",
                a.title.replace(' ', "_"),
                a.title,
                1900 + i * 9
            )
        })
        .collect();
    let body = format!(
        "{header}<nav aria-label=\"Contents\"><h2>Contents</h2><ul>{contents}</ul></nav>\
         <main><h1>{title}</h1><table class=\"infobox\"><caption>{title}</caption>{infobox}</table>\
         <p>{lead}</p>{sections}\
         <section><h2 id=\"See_also\">See also</h2><ul>{see_also}</ul></section>\
         <section><h2 id=\"References\">References</h2><ol>{references}</ol></section></main>{footer}",
        header = wiki_header(),
        title = a.title,
        lead = a.lead,
        footer = wiki_footer(),
    );
    document(&format!("{} — Open Encyclopedia", a.title), &body)
}

/// An article the encyclopedia has no full text for: a title and one line.
fn stub_page(title: &str) -> String {
    let title = escape(title);
    let body = format!(
        "{}<main><h1>{title}</h1><p>{title} is a topic of the Open Encyclopedia; this article is a stub.</p></main>{}",
        wiki_header(),
        wiki_footer()
    );
    document(&format!("{title} — Open Encyclopedia"), &body)
}

fn main_page() -> String {
    let body = format!(
        "{}<main><h1>Welcome to the Open Encyclopedia</h1><p>The free encyclopedia of the sky that anyone can edit.</p>\
         <section><h2>Featured article</h2><p><a href=\"/wiki/Comet\">Comet</a>: icy bodies that grow tails near the Sun.</p></section>\
         <section><h2>In the news</h2><ul><li><a href=\"/wiki/Saturn\">Saturn</a>'s rings are younger than thought.</li><li><a href=\"/wiki/Mars\">Mars</a> rover finds layered rock.</li></ul></section></main>{}",
        wiki_header(),
        wiki_footer()
    );
    document("Open Encyclopedia, the free encyclopedia", &body)
}

fn search_page(query: &str) -> String {
    let q = query.to_lowercase();
    let results: &[(&str, &str)] = if q.contains("oort") {
        &[
            (
                "Oort cloud",
                "The Oort cloud is a theoretical cloud of icy planetesimals surrounding the Sun.",
            ),
            (
                "Hills cloud",
                "The Hills cloud is the inner part of the Oort cloud.",
            ),
            ("Jan Oort", "Jan Hendrik Oort was a Dutch astronomer."),
            (
                "Oort constants",
                "The Oort constants describe the rotation of the Milky Way.",
            ),
        ]
    } else {
        &[]
    };
    let items: String = results
        .iter()
        .map(|(t, s)| format!("<li><a href=\"{}\">{t}</a><p>{s}</p></li>", wiki_href(t)))
        .collect();
    let list = if items.is_empty() {
        "<p>There were no results matching the query.</p>".to_string()
    } else {
        format!("<ul aria-label=\"Results\">{items}</ul>")
    };
    let body = format!(
        "{}<main><h1>Search results</h1><p>Results for “{}”</p>{list}</main>{}",
        wiki_header(),
        escape(query),
        wiki_footer()
    );
    document("Search results — Open Encyclopedia", &body)
}

fn models_page() -> String {
    let rows: String = MODELS
        .iter()
        .map(|(m, o, c, r)| {
            format!("<tr><td><a href=\"/models/{m}\">{m}</a></td><td>{o}</td><td>{c}</td><td>{r}</td></tr>")
        })
        .collect();
    let body = format!(
        "{}<main><h1>Large language models</h1><p>A list of language models and the organisations that trained them.</p>\
         <table><caption>Language models</caption><thead><tr><th>Model</th><th>Organisation</th><th>Context</th><th>Released</th></tr></thead><tbody>{rows}</tbody></table>\
         <h2>See also</h2><ul><li><a href=\"/wiki/Language_model\">Language model</a></li></ul></main>{}",
        wiki_header(),
        wiki_footer()
    );
    document("Large language models — Open Encyclopedia", &body)
}

fn model_page(name: &str) -> Option<String> {
    let (m, o, c, r) = MODELS.iter().find(|(m, ..)| *m == name)?;
    let body = format!(
        "{}<main><h1>{m}</h1><p><b>{m}</b> is a family of language models released by {o} in {r}, with a {c} context window and known for its small memory footprint.</p>\
         <h2>Training</h2><p>{m} was trained on public text and code.</p></main>{}",
        wiki_header(),
        wiki_footer()
    );
    Some(document(&format!("{m} — Open Encyclopedia"), &body))
}

/// The aggregator's header row, as a table of its own.
fn news_header() -> &'static str {
    "<tr><td><table border=\"0\" cellpadding=\"0\" cellspacing=\"0\" width=\"100%\"><tr>\
     <td><a href=\"/news\">Orbit News</a></td>\
     <td><a href=\"/newest\">new</a> | <a href=\"/ask\">ask</a> | <a href=\"/submit\">submit</a></td>\
     <td><a href=\"/login\">login</a></td></tr></table></td></tr>"
}

fn news_page(page: usize) -> Option<String> {
    let first = (page.checked_sub(1)?) * STORIES_PER_PAGE;
    if first >= STORIES.len() {
        return None;
    }
    let mut rows = String::new();
    for (i, story) in STORIES
        .iter()
        .enumerate()
        .skip(first)
        .take(STORIES_PER_PAGE)
    {
        let id = i + 1;
        rows.push_str(&format!(
            "<tr><td align=\"right\">{id}.</td><td><a href=\"/vote?id={id}\">upvote</a></td><td><a href=\"/story/{id}\">{}</a> <span>({})</span></td></tr>\
             <tr><td colspan=\"2\"></td><td>{} points by user{id} {} hours ago | <a href=\"/hide?id={id}\">hide</a> | <a href=\"/item?id={id}\">{} comments</a></td></tr>\
             <tr style=\"height:5px\"></tr>",
            story.title,
            story.site,
            120 - i * 3,
            1 + i / 3,
            story.comments
        ));
    }
    let more = if first + STORIES_PER_PAGE < STORIES.len() {
        format!(
            "<tr><td><a href=\"/news?p={}\">More</a></td></tr>",
            page + 1
        )
    } else {
        String::new()
    };
    let body = format!(
        "<table border=\"0\" cellpadding=\"0\" cellspacing=\"0\" width=\"85%\">{}\
         <tr><td><table border=\"0\" cellpadding=\"0\" cellspacing=\"0\">{rows}</table></td></tr>{more}</table>",
        news_header()
    );
    Some(document("Orbit News", &body))
}

fn item_page(id: usize) -> Option<String> {
    let story = STORIES.get(id.checked_sub(1)?)?;
    let comments: String = if id == 1 {
        COMMENTS
            .iter()
            .enumerate()
            .map(|(i, (user, depth, text))| {
                format!(
                    "<tr><td><img src=\"/s.gif\" height=\"1\" width=\"{}\" alt=\"\"></td><td><a href=\"/vote?c={i}\">upvote</a></td>\
                     <td><span><a href=\"/user?id={user}\">{user}</a> {} hours ago</span><div>{text}</div><a href=\"/reply?c={i}\">reply</a></td></tr>",
                    depth * 40,
                    i + 1
                )
            })
            .collect()
    } else {
        String::new()
    };
    let body = format!(
        "<table border=\"0\" cellpadding=\"0\" cellspacing=\"0\" width=\"85%\">{}\
         <tr><td><table border=\"0\"><tr><td><a href=\"/story/{id}\">{}</a> ({})</td></tr><tr><td>{} comments</td></tr></table></td></tr>\
         <tr><td><table border=\"0\" cellpadding=\"0\" cellspacing=\"0\">{comments}</table></td></tr></table>",
        news_header(),
        story.title,
        story.site,
        story.comments
    );
    Some(document(&format!("{} | Orbit News", story.title), &body))
}

fn signup_page() -> String {
    let body = "<main><h1>Create your account</h1><form action=\"/welcome\" method=\"get\">\
         <p><label for=\"name\">Full name</label> <input id=\"name\" name=\"name\" autocomplete=\"off\"></p>\
         <p><label for=\"email\">Email</label> <input id=\"email\" name=\"email\" type=\"email\"></p>\
         <p><label for=\"plan\">Plan</label> <select id=\"plan\" name=\"plan\"><option>Free</option><option>Pro</option><option>Team</option></select></p>\
         <p><input id=\"terms\" name=\"terms\" type=\"checkbox\"> <label for=\"terms\">I accept the terms</label></p>\
         <button type=\"submit\">Create account</button></form>\
         <p>Already registered? <a href=\"/login\">Sign in</a></p></main>";
    document("Create your account", body)
}

fn welcome_page(query: &str) -> String {
    let name = param(query, "name").unwrap_or_default();
    let email = param(query, "email").unwrap_or_default();
    let plan = param(query, "plan").unwrap_or_default();
    let terms = if param(query, "terms").is_some() {
        "You accepted the terms."
    } else {
        "You did not accept the terms."
    };
    let body = format!(
        "<main><h1>Welcome, {}!</h1><p>Your {} plan is ready; we wrote to {}. {terms}</p></main>",
        escape(&name),
        escape(&plan),
        escape(&email)
    );
    document("Welcome", &body)
}

/// A query parameter, `+` and `%XX` decoded.
pub fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| percent_decode(&v.replace('+', " ")))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The page at `target` (a request's path and query), or `None` for a 404.
pub fn page(target: &str) -> Option<String> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    match path {
        "/wiki/Main_Page" | "/" => Some(main_page()),
        "/wiki/Comet" => Some(article_page(&COMET)),
        "/wiki/Oort_cloud" => Some(article_page(&OORT_CLOUD)),
        "/search" => Some(search_page(&param(query, "q").unwrap_or_default())),
        "/models" => Some(models_page()),
        "/news" => news_page(param(query, "p").and_then(|p| p.parse().ok()).unwrap_or(1)),
        "/item" => item_page(param(query, "id")?.parse().ok()?),
        "/signup" => Some(signup_page()),
        "/welcome" => Some(welcome_page(query)),
        _ => {
            if let Some(name) = path.strip_prefix("/models/") {
                return model_page(name);
            }
            let title = path.strip_prefix("/wiki/")?;
            Some(stub_page(&percent_decode(title).replace('_', " ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_page_is_there_and_carries_its_facts() {
        let comet = page("/wiki/Comet").unwrap();
        assert!(comet.contains("warms and begins to release gases"));
        assert!(page("/search?q=Oort+cloud")
            .unwrap()
            .contains("/wiki/Oort_cloud"));
        assert!(page("/wiki/Oort_cloud").unwrap().contains("Sednoid"));
        assert!(page("/models").unwrap().contains("West Institute"));
        assert!(page("/models/Alpha")
            .unwrap()
            .contains("small memory footprint"));
        assert!(page("/models/Omega").is_none());
        assert!(page("/news").unwrap().contains("Comet seen over the bay"));
        let second = page("/news?p=2").unwrap();
        assert!(second.contains("Where the Voyagers are now") && !second.contains("More</a>"));
        assert!(page("/news?p=3").is_none());
        assert!(page("/item?id=1").unwrap().contains("as predicted."));
        let welcome =
            page("/welcome?name=Ada+Lovelace&email=ada%40example.org&plan=Pro&terms=on").unwrap();
        assert!(welcome.contains("Welcome, Ada Lovelace!") && welcome.contains("ada@example.org"));
        assert!(page("/wiki/Great_Comet")
            .unwrap()
            .contains("<h1>Great Comet</h1>"));
        assert!(page("/nowhere").is_none());
    }

    #[test]
    fn parameters_are_decoded() {
        assert_eq!(
            param("q=Oort+cloud&x=1", "q").as_deref(),
            Some("Oort cloud")
        );
        assert_eq!(param("e=a%40b.c", "e").as_deref(), Some("a@b.c"));
        assert_eq!(param("terms", "terms").as_deref(), Some(""));
        assert_eq!(param("a=1", "b"), None);
    }
}
